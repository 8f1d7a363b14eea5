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
    with app.app_context():
        for metadata in ALL_METADATA:
            metadata.create_all(db.engine)
        _empty_all_tables()
        yield app
        db.session.remove()
        _empty_all_tables()
        db.engine.dispose()


def _empty_all_tables() -> None:
    """Delete every row and restart ids, so known-data tests see ids 1, 2, 3..."""
    tables = [t for metadata in ALL_METADATA for t in reversed(metadata.sorted_tables)]
    with allow_unguarded_writes(), db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
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
