"""The toy app on each backend, its tables (and the toolkit's) emptied around each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import Engine, text

from cqrs_layer import allow_unguarded_writes
from cqrs_layer.tables import metadata as toolkit_metadata
from cqrs_layer.testing import ClosingClient

from .toyapp import ToyBase, create_toy_app, db


@pytest.fixture
def toy_app(database_url: str) -> Iterator[Flask]:
    app = create_toy_app({"SQLALCHEMY_DATABASE_URI": database_url})
    app.test_client_class = ClosingClient  # closes responses, as servers do
    with app.app_context():
        ToyBase.metadata.create_all(db.engine)
        toolkit_metadata.create_all(db.engine)
        empty_tables(db.engine)
        yield app
        db.session.remove()
        empty_tables(db.engine)
        db.engine.dispose()


def empty_tables(engine: Engine) -> None:
    tables = [*reversed(ToyBase.metadata.sorted_tables), *toolkit_metadata.sorted_tables]
    with allow_unguarded_writes(), engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                conn.execute(table.delete())


@pytest.fixture
def toy_client(toy_app: Flask) -> FlaskClient:
    return toy_app.test_client()


@pytest.fixture
def toy_runner(toy_app: Flask) -> FlaskCliRunner:
    return toy_app.test_cli_runner()
