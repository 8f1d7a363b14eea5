"""The cron-style commands: `flask blog import-posts FILE` and `flask blog expire-tokens`."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from .app.extensions import db
from .app.models import Post, User, utcnow
from .factories import UserFactory

EXPORT = """\
username,body,timestamp
susan,first imported,2024-05-01T08:00:00
ghost,nobody wrote this,2024-05-01T09:00:00
john,hello from john,2024-05-02T10:15:00
"""


def test_import_posts_bulk_inserts_rows_for_known_users_and_skips_the_rest(blog_runner, tmp_path):
    susan, john = UserFactory(username="susan"), UserFactory(username="john")
    export = tmp_path / "posts.csv"
    export.write_text(EXPORT, encoding="utf-8")

    result = blog_runner.invoke(args=["blog", "import-posts", str(export)])

    assert result.exit_code == 0, result.output
    assert "Imported 2 posts, skipped 1." in result.output
    assert "skipping a post by unknown user 'ghost'" in result.output
    rows = db.session.execute(
        sa.select(Post.user_id, Post.body, Post.timestamp).order_by(Post.id)
    ).all()
    assert [tuple(row) for row in rows] == [
        (susan.id, "first imported", datetime(2024, 5, 1, 8, 0)),
        (john.id, "hello from john", datetime(2024, 5, 2, 10, 15)),
    ]


def test_import_posts_stamps_rows_without_a_timestamp_with_now(blog_runner, tmp_path):
    UserFactory(username="susan")
    export = tmp_path / "posts.csv"
    export.write_text("username,body\nsusan,undated\n", encoding="utf-8")

    before = utcnow()
    result = blog_runner.invoke(args=["blog", "import-posts", str(export)])

    assert result.exit_code == 0, result.output
    post = db.session.scalar(sa.select(Post))
    assert post.body == "undated"
    assert before <= post.timestamp <= utcnow()


def test_expire_tokens_clears_only_expired_tokens(blog_runner):
    now = utcnow()
    UserFactory(username="expired", token="e" * 32, token_expiration=now - timedelta(1))
    UserFactory(username="valid", token="v" * 32, token_expiration=now + timedelta(1))
    UserFactory(username="never")

    result = blog_runner.invoke(args=["blog", "expire-tokens"])

    assert result.exit_code == 0, result.output
    assert result.output == "Expired 1 tokens.\n"
    tokens = db.session.execute(sa.select(User.username, User.token).order_by(User.id)).all()
    assert [tuple(row) for row in tokens] == [
        ("expired", None),
        ("valid", "v" * 32),
        ("never", None),
    ]
