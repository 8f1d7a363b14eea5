"""Fixtures shared by the whole suite: the app on each backend, a client, a CLI runner.

The behaviour suite only uses ``app``, ``client`` and ``db_session``; which app is built is
decided here (``APP_VARIANTS``), so the same tests can run against a wrapped app later.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import text

from cqrs_layer import allow_unguarded_writes
from cqrs_layer.tables import metadata as toolkit_metadata
from cqrs_layer.testing import ClosingClient
from legacy_app.cqrs.read_models import read_metadata
from legacy_app.extensions import db

from .databases import backends, temporary_postgres_database
from .variants import APP_VARIANTS

# The shop's tables, the toolkit's (outbox, tracking, idempotency keys) and the read models.
ALL_METADATA = (db.metadata, toolkit_metadata, read_metadata)


def selected_variants() -> list[str]:
    wanted = os.environ.get("SHOP_APP_VARIANTS")
    return wanted.split(",") if wanted else list(APP_VARIANTS)


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


@pytest.fixture(params=selected_variants())
def app_variant(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def app(database_url: str, app_variant: str) -> Iterator[Flask]:
    app = APP_VARIANTS[app_variant]({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url})
    app.test_client_class = ClosingClient  # closes responses, as servers do
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
