import os

BLOG_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INSTANCE_PATH = os.path.join(BLOG_ROOT, "instance")


class Config:
    SECRET_KEY = os.environ.get("SECRET_KEY") or "you-will-never-guess"
    SQLALCHEMY_DATABASE_URI = os.environ.get("BLOG_DATABASE_URL") or "sqlite:///" + os.path.join(
        INSTANCE_PATH, "blog.db"
    )
    POSTS_PER_PAGE = 25
    # Older posts are locked against edits.
    POST_EDIT_WINDOW_MINUTES = 60
