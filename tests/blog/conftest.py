"""Fixtures for the blog's suite: its own database per backend, the app, a client, a CLI runner.

Names start with ``blog_`` so they never shadow the shop's ``app``/``client`` fixtures. The
schema comes from the blog's migrations (``flask db upgrade``), as in production: they also
create the toolkit's tables and install the read model's change capture.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from flask_migrate import upgrade
from sqlalchemy import text

from cqrs_layer.schema import metadata as cqrs_metadata

from ..databases import backends, temporary_postgres_database
from .app.extensions import db
from .factories import PostFactory, UserFactory
from .harness import build_app


@pytest.fixture(scope="session", params=backends())
def blog_database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """One database per backend per session (per xdist worker), with the blog's tables."""
    if request.param == "postgresql":
        with temporary_postgres_database(prefix="blog_test") as url:
            _create_tables(url)
            yield url
    else:
        with tempfile.TemporaryDirectory(prefix="blog-test-") as tmp:
            url = f"sqlite:///{tmp}/blog.db"
            _create_tables(url)
            yield url


def _create_tables(url: str) -> None:
    app = build_app(url)
    with app.app_context():
        upgrade()
        db.engine.dispose()


def _emptied() -> list:
    """The blog's tables (read model included, declared once an app is built), then the
    toolkit's: a DELETE's capture triggers write into cqrs_changes. cqrs_captures records
    the installed triggers: kept."""
    toolkit = (table for table in cqrs_metadata.sorted_tables if table.name != "cqrs_captures")
    return [*reversed(db.metadata.sorted_tables), *toolkit]


@pytest.fixture(scope="session")
def blog_app_on_backend(blog_database_url: str) -> Iterator[Flask]:
    """One app per database: building one per test would recompile every template."""
    app = build_app(blog_database_url)
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def blog_app(blog_app_on_backend: Flask) -> Iterator[Flask]:
    """The blog on empty tables, inside an app context for factories and assertions."""
    with blog_app_on_backend.app_context():
        _empty_tables()
        UserFactory.reset_sequence()
        PostFactory.reset_sequence()
        yield blog_app_on_backend
        db.session.remove()


def _empty_tables() -> None:
    with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            names = ", ".join(f'"{table.name}"' for table in _emptied())
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            # Capture marks every read model of a truncated table pending, after the fact.
            conn.execute(text("TRUNCATE cqrs_changes"))
        else:
            for table in _emptied():
                conn.execute(table.delete())


@pytest.fixture
def blog_client(blog_app: Flask) -> FlaskClient:
    return blog_app.test_client()


@pytest.fixture
def blog_runner(blog_app: Flask) -> FlaskCliRunner:
    return blog_app.test_cli_runner()
