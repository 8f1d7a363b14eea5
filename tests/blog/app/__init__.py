"""The blog: a microblog-style Flask app (users, posts, followers, a token-auth JSON API)."""

import os

from flask import Flask

from .config import INSTANCE_PATH, Config
from .extensions import csrf, db, login, migrate

MIGRATIONS_DIRECTORY = os.path.join(os.path.dirname(INSTANCE_PATH), "migrations")


def create_app(config=None):
    # Flask would derive the instance folder from the top-level package, i.e. put the blog's
    # database beside whatever else lives in the repository's instance/ folder.
    app = Flask(__name__, instance_path=INSTANCE_PATH)
    app.config.from_object(Config)
    if config:
        app.config.from_mapping(config)
    os.makedirs(app.instance_path, exist_ok=True)

    db.init_app(app)
    migrate.init_app(app, db, directory=MIGRATIONS_DIRECTORY)
    login.init_app(app)
    csrf.init_app(app)

    from .errors import bp as errors_bp

    app.register_blueprint(errors_bp)

    from .auth import bp as auth_bp

    app.register_blueprint(auth_bp, url_prefix="/auth")

    from .main import bp as main_bp

    app.register_blueprint(main_bp)

    from .api import bp as api_bp

    # The API authenticates every request with a token, never with the session cookie.
    csrf.exempt(api_bp)
    app.register_blueprint(api_bp, url_prefix="/api")

    from .cli import bp as cli_bp

    app.register_blueprint(cli_bp)

    from .cqrs import init_cqrs

    init_cqrs(app)

    return app


from . import models  # noqa: E402, F401
