"""Fixtures shared by the whole suite: the app on each backend, a client, a CLI runner.

The behaviour suite only uses ``app``, ``client`` and ``db_session``; which app is built is
decided by ``app_variant`` (:mod:`tests.variants`): the legacy shop here, every variant in
``tests/api``, so the same tests run against the wrapped app at every stage.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import text

from cqrs_layer import allow_unguarded_writes
from legacy_app.cqrs.schema import cqrs_metadata
from legacy_app.extensions import db

from .databases import backends, temporary_postgres_database
from .variants import LEGACY, Variant

pytest_plugins = ["cqrs_layer.testing.plugin"]

# The shop's tables, the toolkit's (outbox, tracking, idempotency keys) and the read models.
ALL_METADATA = (db.metadata, *cqrs_metadata())


@pytest.fixture(scope="session", params=backends())
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """One database per backend per test session (per xdist worker)."""
    if request.param == "postgresql":
        with temporary_postgres_database() as url:
            yield url
    else:
        with tempfile.TemporaryDirectory(prefix="shop-test-") as tmp:
            yield f"sqlite:///{tmp}/shop.db"


@pytest.fixture(scope="session")
def backend(database_url: str) -> str:
    return "postgresql" if database_url.startswith("postgresql") else "sqlite"


@pytest.fixture
def app_variant() -> Variant:
    """Which shop the ``app`` fixture builds: the legacy one, unless a test module or
    directory says otherwise (``tests/api`` runs every variant)."""
    return LEGACY


@pytest.fixture
def app(database_url: str, app_variant: Variant) -> Iterator[Flask]:
    app = app_variant.build({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url})
    with app.app_context():
        _create_tables_once(database_url)
        _empty_all_tables()
        yield app
        db.session.remove()
        db.engine.dispose()


_created: set[str] = set()


def _create_tables_once(database_url: str) -> None:
    if database_url not in _created:
        for metadata in ALL_METADATA:
            metadata.create_all(db.engine)
        _created.add(database_url)


def _empty_all_tables() -> None:
    """Delete every row and restart ids, so known-data tests see ids 1, 2, 3...

    Only the tables holding rows are emptied: on PostgreSQL a TRUNCATE costs per table, and
    a test touches a handful of the thirty.
    """
    tables = [t for metadata in ALL_METADATA for t in reversed(metadata.sorted_tables)]
    with allow_unguarded_writes(), db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            probe = " UNION ALL ".join(
                f"SELECT '{t.name}' WHERE EXISTS (SELECT 1 FROM \"{t.name}\")" for t in tables
            )
            used = [row[0] for row in conn.execute(text(probe))]
            if used:
                names = ", ".join(f'"{name}"' for name in used)
                conn.execute(text(f"TRUNCATE {names} CASCADE"))
            # Every sequence a test advanced, even by an insert that was rolled back.
            conn.execute(
                text(
                    "SELECT setval(format('%I.%I', schemaname, sequencename), 1, false)"
                    " FROM pg_sequences WHERE last_value IS NOT NULL"
                )
            )
        else:
            for table in tables:
                conn.execute(table.delete())


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def db_session(app: Flask) -> Any:
    return db.session
