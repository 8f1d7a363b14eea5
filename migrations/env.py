"""Alembic environment: which database to migrate, and which tables it should hold.

The URL is taken from, in order: ``upgrade_database(url)`` (a config attribute), ``alembic -x
url=...``, ``sqlalchemy.url`` in the ini, then ``DATABASE_URL``, then the app's default SQLite
file ``instance/shop.db`` -- the same resolution ``create_app()`` uses.
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from alembic.util import CommandError
from sqlalchemy import MetaData, create_engine, pool
from sqlalchemy.engine import Connection

from cqrs_layer.schema import migration_metadata, unreachable
from legacy_app import models  # noqa: F401  (registers the shop's tables on db.metadata)
from legacy_app.cqrs.read_models import READ_MODELS
from legacy_app.extensions import db
from legacy_app.migrate import ensure_sqlite_directory, resolve_database_url

config = context.config

if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def database_url() -> str:
    explicit = (
        config.attributes.get("database_url")
        or context.get_x_argument(as_dictionary=True).get("url")
        or config.get_main_option("sqlalchemy.url")
    )
    return resolve_database_url(explicit)


def target_metadata() -> list[MetaData]:
    """Every MetaData whose tables the migrations own: the shop's, then what its migration
    to CQRS adds (the toolkit's tables and the read models)."""
    return migration_metadata(db.metadata, read_models=READ_MODELS)


def configure(**options: object) -> None:
    context.configure(
        target_metadata=target_metadata(),
        compare_type=True,
        **options,  # type: ignore[arg-type]
    )


def run_migrations_offline() -> None:
    """Print the SQL instead of running it (``alembic upgrade head --sql``)."""
    url = database_url()
    configure(
        url=url,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_with_connection(connection: Connection) -> None:
    # SQLite cannot ALTER most things in place; batch mode rebuilds the table instead.
    configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    shared = config.attributes.get("connection")
    if shared is not None:  # a caller that already holds a connection (e.g. a test)
        run_with_connection(shared)
        return
    url = database_url()
    ensure_sqlite_directory(url)
    engine = create_engine(url, poolclass=pool.NullPool)
    problem = unreachable(engine)
    if problem:  # a PostgreSQL database not created yet, a server down: one line, no traceback
        raise CommandError(problem)
    try:
        with engine.connect() as connection:
            run_with_connection(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
