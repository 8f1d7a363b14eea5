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
from alembic import command
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from cqrs_layer.schema import install_capture
from legacy_app.cqrs.read_models import READ_MODELS
from legacy_app.cqrs.schema import cqrs_metadata
from legacy_app.extensions import db
from legacy_app.migrate import alembic_config

from .databases import backends, empty_tables, temporary_postgres_database
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
    """The tables, and the read models' change capture, as the migrations make them, and
    the database stamped with their head revision (``/healthz`` checks it)."""
    if database_url not in _created:
        for metadata in ALL_METADATA:
            metadata.create_all(db.engine)
        with db.engine.begin() as connection:
            install_capture(connection, *READ_MODELS)
        command.stamp(alembic_config(database_url), "head")
        _created.add(database_url)


def _empty_all_tables() -> None:
    empty_tables(db.engine, ALL_METADATA)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def db_session(app: Flask) -> Any:
    return db.session
