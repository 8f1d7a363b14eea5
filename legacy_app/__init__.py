"""The demo shop: a plain Flask + Flask-SQLAlchemy CRUD app with a JSON API."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from flask import Flask

from . import models  # noqa: F401  (registers the tables on db.metadata)
from .config import config_from_env
from .db_setup import configure_sqlite
from .errors import register_error_handlers
from .extensions import db
from .health import add_schema_check
from .migrate import not_at_head
from .request_limits import register_request_limits

__all__ = ["create_app", "db"]


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=True)
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.from_mapping(config_from_env(app.instance_path))
    # FLASK_<KEY>=value from the environment, the usual Flask way (values parsed as JSON
    # where they can be): e.g. FLASK_CQRS_WRITE_GUARD=strict. Secrets such as the admin
    # API's token (FLASK_CQRS_ADMIN_TOKEN) come from here, never the command line, so
    # they do not show in `ps`.
    app.config.from_prefixed_env()
    if config:
        app.config.from_mapping(config)
    app.json.sort_keys = False  # type: ignore[attr-defined]

    db.init_app(app)
    with app.app_context():
        configure_sqlite(db.engine)

    add_schema_check(app, not_at_head)
    register_error_handlers(app)
    register_request_limits(app)
    _register_blueprints(app)
    _register_commands(app)
    _init_cqrs(app)
    return app


def _init_cqrs(app: Flask) -> None:
    # After the blueprints: the toolkit wraps their endpoints by name.
    from .cqrs.wiring import init_cqrs

    init_cqrs(app)


def _register_blueprints(app: Flask) -> None:
    from .api import customers, meta, orders, products, reports

    for module in (products, customers, orders, reports, meta):
        app.register_blueprint(module.bp)


def _register_commands(app: Flask) -> None:
    from .seed import seed_command

    app.cli.add_command(seed_command)
