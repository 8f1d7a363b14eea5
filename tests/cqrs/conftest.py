"""Fixtures for the shop's read models: their tables (and the toolkit's) on the app's DB."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import Engine

from cqrs_layer.schema import metadata as toolkit_metadata
from legacy_app.cqrs.read_models import read_metadata
from legacy_app.extensions import db

from ..databases import empty_tables
from ..variants import LEGACY, Variant


@pytest.fixture
def read_db(app: Flask) -> Iterator[Engine]:
    """The read-model and toolkit tables on the ``app`` fixture's engine, empty.

    Created once per database (create_all skips existing tables) and emptied before and
    after each test, like the ``app`` fixture does with the shop's tables.
    """
    engine = db.engine
    read_metadata.create_all(engine)
    toolkit_metadata.create_all(engine)
    empty_tables(engine, (read_metadata, toolkit_metadata))
    yield engine
    db.session.remove()
    empty_tables(engine, (read_metadata, toolkit_metadata))


@pytest.fixture
def app_variant() -> Variant:
    """The legacy app unless a test says otherwise: its endpoints are the truth the query
    handlers are compared with, and no wrapped path or test-harness sync may touch the
    read models behind the tests' back."""
    return LEGACY


def backfill(app: Flask, *names: str) -> None:
    """Rebuild the read models (all, or the named ones) with ``flask cqrs backfill``."""
    result = app.test_cli_runner().invoke(args=["cqrs", "backfill", *names])
    assert result.exit_code == 0, result.output
