"""``flask cqrs backfill`` / ``flask cqrs verify``: output and exit status."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import (
    Column,
    Engine,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    delete,
    func,
    insert,
    select,
    update,
)

from cqrs_layer import CQRS, ReadModel
from cqrs_layer.ops.cli.read_models import backfill_command, verify_command
from cqrs_layer.ops.context import toolkit_of
from cqrs_layer.schema import metadata as toolkit_metadata

metadata = MetaData()
authors = Table(
    "rc_authors",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(50), nullable=False),
)
books = Table(
    "rc_books",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("author_id", ForeignKey("rc_authors.id"), nullable=False),
)
author_stats = Table(
    "rc_author_stats",
    metadata,
    Column("author_id", Integer, primary_key=True),
    Column("books", Integer, nullable=False),
)
author_names = Table(
    "rc_author_names",
    metadata,
    Column("author_id", Integer, primary_key=True),
    Column("name", String(50), nullable=False),
)


def stats_source() -> Any:
    return (
        select(authors.c.id.label("author_id"), func.count(books.c.id).label("books"))
        .select_from(authors.outerjoin(books))
        .group_by(authors.c.id)
    )


def names_source() -> Any:
    return select(authors.c.id.label("author_id"), authors.c.name)


STATS = ReadModel("author_stats", author_stats, stats_source)
NAMES = ReadModel("author_names", author_names, names_source)


@pytest.fixture
def app(database_url: str) -> Iterator[Flask]:
    """A minimal app of its own with the two read models registered: the commands read
    the toolkit's registry and engine."""
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = database_url
    own_db = SQLAlchemy()
    own_db.init_app(app)
    cqrs = CQRS(app, own_db)
    cqrs.register_read_model(STATS)
    cqrs.register_read_model(NAMES)
    yield app
    toolkit_of(app).engine.dispose()


@pytest.fixture
def engine(app: Flask) -> Iterator[Engine]:
    engine = toolkit_of(app).engine
    metadata.drop_all(engine)
    metadata.create_all(engine)
    toolkit_metadata.create_all(engine)  # the commands refuse a database without them
    with engine.begin() as conn:
        conn.execute(insert(authors), [{"id": 1, "name": "Ann"}, {"id": 2, "name": "Bob"}])
        conn.execute(insert(books), [{"id": 1, "author_id": 1}, {"id": 2, "author_id": 1}])
    yield engine
    metadata.drop_all(engine)


@pytest.fixture
def runner(app: Flask, engine: Engine) -> FlaskCliRunner:
    return app.test_cli_runner()


def rows(engine: Engine, table: Table) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(table).order_by(table.c.author_id))]


def test_backfill_without_names_builds_every_model(runner: FlaskCliRunner, engine: Engine) -> None:
    result = runner.invoke(backfill_command, [])

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "author_names: lock build swap analyze commit done"
    assert lines[1].startswith("author_names: 2 rows in ")
    assert lines[3].startswith("author_stats: 2 rows in ")
    assert rows(engine, author_stats) == [(1, 2), (2, 0)]
    assert rows(engine, author_names) == [(1, "Ann"), (2, "Bob")]


def test_backfill_by_name_builds_only_that_model(runner: FlaskCliRunner, engine: Engine) -> None:
    result = runner.invoke(backfill_command, ["author_stats"])

    assert result.exit_code == 0, result.output
    assert "author_names" not in result.output
    assert rows(engine, author_stats) == [(1, 2), (2, 0)]
    assert rows(engine, author_names) == []


def test_an_unknown_name_is_a_usage_error_listing_the_known(runner: FlaskCliRunner) -> None:
    result = runner.invoke(backfill_command, ["author_stats", "nope"])

    assert result.exit_code == 2
    assert "unknown read model(s) nope; known: author_names, author_stats" in result.output


def test_verify_exits_0_when_all_agree(runner: FlaskCliRunner) -> None:
    runner.invoke(backfill_command, [])

    result = runner.invoke(verify_command, [])

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["author_names: OK (2 rows)", "author_stats: OK (2 rows)"]


def drift(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(delete(author_stats).where(author_stats.c.author_id == 2))
        conn.execute(insert(author_stats), {"author_id": 9, "books": 1})
        conn.execute(update(author_stats).where(author_stats.c.author_id == 1).values(books=5))


def test_verify_reports_drift_and_exits_1(runner: FlaskCliRunner, engine: Engine) -> None:
    runner.invoke(backfill_command, [])
    drift(engine)

    result = runner.invoke(verify_command, ["author_stats", "--show", "2"])

    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "author_stats: DRIFT missing=1 extra=1 different=1 (source 2 rows, table 2 rows)",
        "  missing author_id=2: {'author_id': 2, 'books': 0}",
        "  extra author_id=9: {'author_id': 9, 'books': 1}",
    ]
    assert rows(engine, author_stats) == [(1, 5), (9, 1)]  # verify alone changes nothing


def test_verify_repair_fixes_and_exits_0(runner: FlaskCliRunner, engine: Engine) -> None:
    runner.invoke(backfill_command, [])
    drift(engine)

    result = runner.invoke(verify_command, ["author_stats", "--repair", "--show", "0"])

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "author_stats: DRIFT missing=1 extra=1 different=1 (source 2 rows, table 2 rows)",
        "  repaired: inserted 1, deleted 1, updated 1",
        "  after repair: OK",
    ]
    assert rows(engine, author_stats) == [(1, 2), (2, 0)]
    assert runner.invoke(verify_command, []).exit_code == 0


def test_verify_json_output(runner: FlaskCliRunner, engine: Engine) -> None:
    runner.invoke(backfill_command, [])
    drift(engine)

    result = runner.invoke(verify_command, ["--json"])

    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["ok"] is False
    names, stats = document["models"]
    assert (names["name"], names["ok"], names["agrees"]) == ("author_names", True, True)
    assert (stats["missing"], stats["extra"], stats["different"]) == (1, 1, 1)
    assert stats["rows"][2] == {
        "kind": "different",
        "key": {"author_id": 1},
        "columns": {"books": {"expected": 2, "actual": 5}},
    }
