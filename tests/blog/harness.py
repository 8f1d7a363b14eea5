"""How the suite builds a blog app: test config, and a client and CLI runner that run each
call in an app context of its own."""

from __future__ import annotations

import contextvars
from typing import Any

from flask import Flask, has_app_context
from flask.testing import FlaskClient, FlaskCliRunner

from .app import create_app
from .app.extensions import db


def build_app(database_url: str, **overrides: Any) -> Flask:
    app = create_app(
        {
            "TESTING": True,
            "WTF_CSRF_ENABLED": False,
            "SECRET_KEY": "blog-tests",
            "SQLALCHEMY_DATABASE_URI": database_url,
            **overrides,
        }
    )
    app.test_client_class = SeparateContextClient
    app.test_cli_runner_class = SeparateContextCliRunner
    return app


class SeparateContextClient(FlaskClient):
    """Runs each request in an app context of its own, as a server does.

    Flask reuses an app context that is already pushed (the test's), so requests would share
    its ``g`` (where Flask-Login caches the user) and its SQLAlchemy session. Afterwards the
    test's session is expired, so the test reads what the request committed.
    """

    def open(self, *args: Any, **kwargs: Any) -> Any:
        response = contextvars.Context().run(super().open, *args, **kwargs)
        # Redirects are followed by calling open() again, outside any app context.
        if has_app_context():
            db.session.expire_all()
        return response


class SeparateContextCliRunner(FlaskCliRunner):
    """Runs each command in an app context of its own, as cron would run it."""

    def invoke(self, *args: Any, **kwargs: Any) -> Any:
        result = contextvars.Context().run(super().invoke, *args, **kwargs)
        db.session.expire_all()
        return result
