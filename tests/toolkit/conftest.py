"""The toy app on each backend, its tables (and the toolkit's) emptied around each test.

``toy_app`` is the toy app with the default settings. The toolkit reads its settings once,
when the app is built, so a test that needs others builds its app with them:
``make_toy_app(CQRS_WRITE_GUARD="strict")``. ``engine`` is a plain engine on the same
database with the toolkit's tables, for the parts that need no Flask app.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import Engine, create_engine

from cqrs_layer.ops.context import Toolkit, toolkit_of
from cqrs_layer.schema import metadata as toolkit_metadata

from .helpers import MakeToyApp, empty_tables, running
from .toyapp import create_toy_app


@pytest.fixture
def make_toy_app(database_url: str) -> Iterator[MakeToyApp]:
    """Builds the toy app with the given ``CQRS_*`` settings, set up like ``toy_app``; the
    app context of the last one built is the current one until the test ends."""
    with ExitStack() as stack:

        def make(**config: Any) -> Flask:
            app = create_toy_app({"SQLALCHEMY_DATABASE_URI": database_url, **config})
            return stack.enter_context(running(app))

        yield make


@pytest.fixture
def toy_app(make_toy_app: MakeToyApp) -> Flask:
    return make_toy_app()


@pytest.fixture
def toolkit(toy_app: Flask) -> Toolkit:
    return toolkit_of(toy_app)


@pytest.fixture
def toy_client(toy_app: Flask) -> FlaskClient:
    return toy_app.test_client()


@pytest.fixture
def toy_runner(toy_app: Flask) -> FlaskCliRunner:
    return toy_app.test_cli_runner()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A plain engine on the test database with the toolkit's tables, emptied around the
    test: for the parts that have no reason to need a Flask app."""
    engine = create_engine(database_url)
    toolkit_metadata.create_all(engine)
    empty_tables(engine, toolkit_metadata)
    yield engine
    empty_tables(engine, toolkit_metadata)
    engine.dispose()
