"""``cqrs_layer.schema``: the toolkit's tables and the read models' in an app's migrations,
and the one-line diagnosis of a database the toolkit cannot use."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.operations import Operations
from flask import Flask
from sqlalchemy import Engine, MetaData, create_engine, inspect
from sqlalchemy.engine import make_url

from cqrs_layer.schema import (
    create_read_models,
    create_toolkit_tables,
    database_problem,
    drop_read_models,
    drop_toolkit_tables,
    metadata,
    migration_metadata,
    missing_tables,
)
from tests.databases import postgres_admin_url

from .library_schema import Library
from .toyapp import ToyBase, shelf_model

MIGRATE = "run your migrations (alembic upgrade head / flask db upgrade)"
TOOLKIT_TABLES = sorted(metadata.tables)
TOOLKIT_TABLES_IN_ORDER = [table.name for table in metadata.sorted_tables]


@pytest.fixture
def empty_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine(f"sqlite:///{tmp_path}/app.db")
    yield engine
    engine.dispose()


def tables(engine: Engine) -> list[str]:
    return sorted(inspect(engine).get_table_names())


def test_migration_metadata_is_the_apps_the_toolkits_and_the_read_models_each_once() -> None:
    library = Library("schema")
    app_metadata = MetaData()
    found = migration_metadata(app_metadata, read_models=[library.model, library.model])
    assert found == [app_metadata, metadata, library.metadata]
    # A read model declared on the app's own MetaData (the toy app's shelf) adds nothing.
    assert migration_metadata(ToyBase.metadata, read_models=[shelf_model]) == [
        ToyBase.metadata,
        metadata,
    ]


def test_migration_metadata_takes_the_read_models_registered_on_an_app(toy_app: Flask) -> None:
    """Flask-Migrate's env.py runs with the app: ``read_models=current_app``."""
    assert migration_metadata(ToyBase.metadata, read_models=toy_app) == [
        ToyBase.metadata,
        metadata,
    ]


def test_autogenerate_sees_the_toolkits_tables_and_the_read_models(empty_engine: Engine) -> None:
    library = Library("auto")
    with empty_engine.connect() as connection:
        context = MigrationContext.configure(connection)
        diffs = compare_metadata(context, migration_metadata(read_models=[library.model]))
    added = sorted(diff[1].name for diff in diffs if diff[0] == "add_table")
    assert added == sorted([*TOOLKIT_TABLES, *library.metadata.tables])


def test_a_revision_creates_and_drops_the_toolkits_tables_and_read_models(
    empty_engine: Engine,
) -> None:
    library = Library("rev")
    library.metadata.create_all(empty_engine, tables=[library.authors, library.books])
    with empty_engine.begin() as connection:
        op = Operations(MigrationContext.configure(connection))
        create_toolkit_tables(op)
        create_read_models(op, library.model)
        assert missing_tables(connection) == []
    assert library.stats.name in tables(empty_engine)
    with empty_engine.connect() as connection:  # its change capture is installed
        assert connection.exec_driver_sql("SELECT model FROM cqrs_captures").all() == [
            ("author_stats",)
        ]

    with empty_engine.begin() as connection:
        op = Operations(MigrationContext.configure(connection))
        drop_read_models(op, library.model)
        drop_toolkit_tables(op)
        assert missing_tables(connection) == TOOLKIT_TABLES_IN_ORDER
    assert tables(empty_engine) == sorted([library.authors.name, library.books.name])


def test_create_toolkit_tables_writes_sql_offline() -> None:
    """``alembic upgrade head --sql``: the statements are printed, not run."""
    buffer = io.StringIO()
    context = MigrationContext.configure(
        dialect_name="postgresql", opts={"as_sql": True, "output_buffer": buffer}
    )
    create_toolkit_tables(Operations(context))
    sql = buffer.getvalue()
    for name in TOOLKIT_TABLES:
        assert f"CREATE TABLE {name} (" in sql
    assert "CREATE INDEX ix_cqrs_changes_model_id ON cqrs_changes (model, id)" in sql


# ---------------------------------------------------------------- what is wrong, in one line


def test_an_unmigrated_database_is_named_with_the_fix(empty_engine: Engine) -> None:
    assert database_problem(empty_engine) == (
        f"the toolkit's tables are missing in {empty_engine.url}: {MIGRATE}"
    )


def test_a_partly_migrated_database_names_the_missing_tables(empty_engine: Engine) -> None:
    metadata.create_all(empty_engine, tables=[metadata.tables["cqrs_outbox"]])
    with empty_engine.connect() as connection:
        missing = missing_tables(connection)
    assert "cqrs_outbox" not in missing and "cqrs_flags" in missing
    assert database_problem(empty_engine) == (
        f"the toolkit's tables {', '.join(missing)} are missing in {empty_engine.url}: {MIGRATE}"
    )


def test_a_migrated_database_has_no_problem(empty_engine: Engine) -> None:
    metadata.create_all(empty_engine)
    assert database_problem(empty_engine) is None


def test_a_sqlite_file_that_cannot_be_opened(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/no/such/folder/app.db")
    assert database_problem(engine) == (
        f"cannot open the SQLite database {tmp_path}/no/such/folder/app.db: unable to open "
        "database file (does its folder exist, and may this user write there?)"
    )


def test_an_unreachable_server_is_named_without_its_password() -> None:
    engine = create_engine("postgresql+psycopg://shop:s3cret@127.0.0.1:1/shop")
    problem = database_problem(engine)
    assert problem is not None
    assert problem.startswith("cannot connect to postgresql+psycopg://shop:***@127.0.0.1:1/shop: ")
    assert "Connection refused" in problem and "s3cret" not in problem


@pytest.mark.postgres
def test_a_postgresql_database_that_does_not_exist_says_createdb() -> None:
    admin = postgres_admin_url()
    if admin is None:
        pytest.skip("no PostgreSQL configured (TEST_POSTGRES_URL)")
    url = make_url(admin).set(database="cqrs_no_such_database", password="s3cret")
    problem = database_problem(create_engine(url))
    server = f"postgresql+psycopg://{url.username}:***@{url.host}:{url.port}"
    assert problem == (
        f"the database cqrs_no_such_database does not exist on {server}: create it "
        f"(createdb -h {url.host} -p {url.port} -U {url.username} cqrs_no_such_database), "
        f"then {MIGRATE}"
    )
