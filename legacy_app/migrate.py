"""Schema migrations (alembic) for the shop, callable from Python as well as the CLI.

``alembic upgrade head`` (the CLI, reading ``alembic.ini``) and :func:`upgrade_database`
(tests, scripts) share the same environment in ``migrations/env.py`` and resolve the database
URL the same way the app does, so they always act on the database the app will open.
"""

from __future__ import annotations

import functools
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask
from sqlalchemy import Connection
from sqlalchemy.engine import make_url

from .config import config_from_env

__all__ = [
    "REPO_ROOT",
    "alembic_config",
    "downgrade_database",
    "ensure_sqlite_directory",
    "head_revisions",
    "not_at_head",
    "resolve_database_url",
    "upgrade_database",
]

# alembic.ini and migrations/ live beside the package in the source tree (editable install).
REPO_ROOT = Path(__file__).resolve().parent.parent


def resolve_database_url(url: str | None = None) -> str:
    """``url`` if given, else exactly what ``create_app()`` would use.

    The default file (``instance/shop.db``) depends on Flask's instance path for this
    package, so ask Flask for it instead of guessing.
    """
    if url:
        return url
    instance_path = Flask(__package__ or "legacy_app", instance_relative_config=True).instance_path
    return str(config_from_env(instance_path)["SQLALCHEMY_DATABASE_URI"])


def ensure_sqlite_directory(url: str) -> None:
    """SQLite creates the file but not its folder; a fresh checkout has no instance/ yet."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(str(parsed.database)).parent.mkdir(parents=True, exist_ok=True)


def alembic_config(url: str | None = None) -> Config:
    """An alembic Config for ``url`` (default: the app's database) that leaves logging alone."""
    config = Config(str(REPO_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(REPO_ROOT / "migrations"))
    # Passed as an attribute, not an ini option: ini values go through %-interpolation,
    # which would mangle URL-encoded passwords.
    config.attributes["database_url"] = resolve_database_url(url)
    # fileConfig() would reset the host program's logging (pytest's capture, gunicorn's).
    config.attributes["configure_logging"] = False
    return config


def upgrade_database(url: str | None = None, revision: str = "head") -> None:
    """Bring the database at ``url`` (default: the app's) up to ``revision``."""
    command.upgrade(alembic_config(url), revision)


def downgrade_database(url: str | None = None, revision: str = "base") -> None:
    """Undo migrations down to ``revision`` (``base``: an empty schema)."""
    command.downgrade(alembic_config(url), revision)


@functools.cache
def head_revisions() -> frozenset[str]:
    """The revisions this code's migrations end at (read once: they change with a deploy)."""
    scripts = Config()
    scripts.set_main_option("script_location", str(REPO_ROOT / "migrations"))
    return frozenset(ScriptDirectory.from_config(scripts).get_heads())


def not_at_head(connection: Connection) -> str | None:
    """Why the database's schema is not the one this code needs, or None when it is."""
    current = frozenset(MigrationContext.configure(connection).get_current_heads())
    needed = head_revisions()
    if current == needed:
        return None
    at = f"is at {', '.join(sorted(current))}" if current else "has no alembic revision"
    return f"the database {at}, this code needs {', '.join(sorted(needed))}"
