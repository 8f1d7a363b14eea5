"""The toolkit's tables and your read models' in your migrations, and whether a database
has them.

**alembic's env.py**: compare the toolkit's tables and the read models' tables too, so
``alembic revision --autogenerate`` writes them into a revision like your own::

    from cqrs_layer.schema import migration_metadata
    from myapp.cqrs.read_models import READ_MODELS

    target_metadata = migration_metadata(Base.metadata, read_models=READ_MODELS)

With Flask-Migrate, in the ``get_metadata()`` of the ``env.py`` that ``flask db init``
wrote (``flask db`` runs with your app, so its registered read models can be used)::

    def get_metadata():
        return migration_metadata(target_db.metadata, read_models=current_app)

**A revision** (hand-written, or after autogenerate): the toolkit's tables, then each read
model's table with its change capture, the triggers that keep it current whatever writes
its source tables::

    from cqrs_layer.schema import create_toolkit_tables, create_read_models, ...

    def upgrade():
        create_toolkit_tables(op)
        create_read_models(op, *READ_MODELS)

    def downgrade():
        drop_read_models(op, *READ_MODELS)
        drop_toolkit_tables(op)

When a read model's ``source()`` changes later, a revision re-installs its capture with
:func:`install_capture` (``flask cqrs status`` shows a capture as ``outdated`` until then).
These helpers create the tables as this version of the toolkit declares them; a revision
written out by autogenerate keeps creating the same schema whatever the toolkit becomes.

**Checks** for env.py, health endpoints and scripts: :func:`unreachable`,
:func:`missing_tables`, :func:`database_problem`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import Flask
from sqlalchemy import Connection, Engine, MetaData

from .core import database
from .core.read_model import ReadModel
from .core.tables import metadata
from .ops.context import toolkit_of
from .read import capture

__all__ = [
    "create_read_models",
    "create_toolkit_tables",
    "database_problem",
    "drop_read_models",
    "drop_toolkit_tables",
    "install_capture",
    "metadata",
    "migration_metadata",
    "missing_tables",
    "remove_capture",
    "unreachable",
]


def migration_metadata(
    *app_metadata: MetaData, read_models: Iterable[ReadModel] | Flask = ()
) -> list[MetaData]:
    """What alembic's ``target_metadata`` should be: your ``app_metadata``, the toolkit's
    tables and the tables of ``read_models`` (a list, or a Flask app to take the read models
    registered on it), each MetaData once::

        target_metadata = migration_metadata(db.metadata, read_models=READ_MODELS)
    """
    if isinstance(read_models, Flask):
        read_models = toolkit_of(read_models).registry.read_models.values()
    found = [*app_metadata, metadata, *(model.table.metadata for model in read_models)]
    return list({id(each): each for each in found}.values())


def create_toolkit_tables(op: Any) -> None:
    """Create the toolkit's tables and their indexes in an alembic revision (online or
    ``--sql``)::

        def upgrade():
            create_toolkit_tables(op)
    """
    for table in metadata.sorted_tables:
        op.impl.create_table(table)


def drop_toolkit_tables(op: Any) -> None:
    """Drop the toolkit's tables (every flag, audit row and comparison with them)::

    def downgrade():
        drop_toolkit_tables(op)
    """
    for table in reversed(metadata.sorted_tables):
        op.impl.drop_table(table)


def create_read_models(op: Any, *read_models: ReadModel) -> None:
    """Create each read model's table and install its change capture; after
    :func:`create_toolkit_tables` (capture records into the toolkit's tables). The tables
    start empty: fill them with ``flask cqrs backfill``::

        def upgrade():
            create_read_models(op, catalog, customer_summary)
    """
    for model in read_models:
        op.impl.create_table(model.table)
    install_capture(op, *read_models)


def drop_read_models(op: Any, *read_models: ReadModel) -> None:
    """Remove each read model's change capture, then its table::

    def downgrade():
        drop_read_models(op, catalog, customer_summary)
    """
    remove_capture(op, *read_models)
    for model in read_models:
        op.impl.drop_table(model.table)


def install_capture(op_or_connection: Any, *read_models: ReadModel) -> None:
    """Install (or replace) the triggers that keep ``read_models`` current, whatever
    writes their source tables. Takes alembic's ``op`` or a SQLAlchemy ``Connection``::

        def upgrade():
            install_capture(op, catalog)   # catalog's source() changed
    """
    capture.install(_connection(op_or_connection), read_models)


def remove_capture(op_or_connection: Any, *read_models: ReadModel) -> None:
    """Remove the triggers :func:`install_capture` installed::

    def downgrade():
        remove_capture(op, catalog)
    """
    capture.remove(_connection(op_or_connection), read_models)


def missing_tables(connection: Connection) -> list[str]:
    """The toolkit's tables the database lacks (none once migrated), e.g. for a health
    endpoint::

        if missing_tables(db.session.connection()):
            return {"status": "unmigrated"}, 503
    """
    return database.missing_tables(connection)


def database_problem(engine: Engine) -> str | None:
    """What keeps the toolkit from using ``engine``'s database, as one line with the fix
    (it does not exist: ``createdb``; it is unreachable; the toolkit's tables are missing:
    run the migrations), the database named with its password hidden; None when all is
    well::

        problem = database_problem(db.engine)
        if problem:
            sys.exit(problem)
    """
    return database.database_problem(engine)


def unreachable(engine: Engine) -> str | None:
    """Why ``engine``'s database cannot be connected to, as one line with the fix
    (``createdb`` for a PostgreSQL database that does not exist); None when it can. In
    alembic's env.py, before migrating::

        problem = unreachable(engine)
        if problem:
            raise alembic.util.CommandError(problem)  # alembic prints FAILED: <problem>
    """
    return database.unreachable(engine)


def _connection(op_or_connection: Any) -> Connection:
    if isinstance(op_or_connection, Connection):
        return op_or_connection
    get_bind = getattr(op_or_connection, "get_bind", None)
    if get_bind is None:
        raise TypeError("pass alembic's op or a SQLAlchemy Connection")
    bind: Connection = get_bind()
    return bind
