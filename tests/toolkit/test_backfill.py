"""Backfill builds a read model from its source tables in one swap, on every backend."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import (
    Engine,
    create_engine,
    event,
    insert,
    inspect,
    select,
    update,
)

from cqrs_layer import ReadModel
from cqrs_layer.read.backfill import PHASES, BackfillResult, backfill, backfill_all
from cqrs_layer.schema import metadata as toolkit_metadata
from cqrs_layer.sql import increment

from .library_schema import Library

EXPECTED = [
    (1, "Ann", 2, 300, 15.0, datetime(2024, 2, 1)),
    (2, "Bob", 1, 50, 5.5, datetime(2024, 3, 1)),
    (3, "Cy", 0, 0, None, None),
]


class BackfillLibrary(Library):
    """The library schema with three authors (Cy without books) and two readers' helpers."""

    def __init__(self) -> None:
        super().__init__("rm")

    def seed(self, engine: Engine) -> None:
        with engine.begin() as conn:
            conn.execute(
                insert(self.authors),
                [{"id": 1, "name": "Ann"}, {"id": 2, "name": "Bob"}, {"id": 3, "name": "Cy"}],
            )
            conn.execute(
                insert(self.books),
                [
                    _book(1, 1, 100, 10.0, datetime(2024, 1, 1)),
                    _book(2, 1, 200, 20.0, datetime(2024, 2, 1)),
                    _book(3, 2, 50, 5.5, datetime(2024, 3, 1)),
                ],
            )

    def stats_rows(self, conn: Any) -> list[tuple[Any, ...]]:
        s = self.stats
        columns = [s.c.author_id, s.c.name, s.c.books, s.c.pages, s.c.avg_price]
        rows = conn.execute(select(*columns, s.c.last_published).order_by(s.c.author_id))
        return [tuple(row) for row in rows]


def _book(id: int, author_id: int, pages: int, price: float, at: datetime) -> dict[str, Any]:
    return {"id": id, "author_id": author_id, "pages": pages, "price": price, "published_at": at}


def make_engine(database_url: str) -> Engine:
    engine = create_engine(database_url)
    if engine.dialect.name == "sqlite":
        # As an app would run it: WAL so readers see the last commit while a writer works.
        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=10000")
            cursor.close()

    return engine


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    toolkit_metadata.create_all(engine)  # the backfill clears the changes it applies
    yield engine
    engine.dispose()


@pytest.fixture
def library(engine: Engine) -> Iterator[BackfillLibrary]:
    library = BackfillLibrary()
    library.metadata.drop_all(engine)
    library.metadata.create_all(engine)
    library.seed(engine)
    yield library
    library.metadata.drop_all(engine)


def test_backfill_builds_exactly_the_source_rows(engine: Engine, library: BackfillLibrary) -> None:
    result = backfill(engine, library.model)

    assert result.name == "author_stats"
    assert result.rows == 3
    assert result.seconds > 0
    with engine.connect() as conn:
        assert library.stats_rows(conn) == EXPECTED


def test_backfill_replaces_stale_contents(engine: Engine, library: BackfillLibrary) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(library.stats),
            [
                {"author_id": 1, "name": "Ann", "books": 99, "pages": 1, "avg_price": 1.0},
                {"author_id": 42, "name": "Ghost", "books": 1, "pages": 1, "avg_price": 1.0},
            ],
        )

    assert backfill(engine, library.model).rows == 3

    with engine.connect() as conn:
        assert library.stats_rows(conn) == EXPECTED


def test_postgresql_plans_the_rebuilt_table_from_fresh_statistics(
    engine: Engine, library: BackfillLibrary
) -> None:
    """Right after a bulk load autovacuum has not analyzed the table yet; the backfill
    does, so the first queries on the new rows are planned for their real size."""
    backfill(engine, library.model)

    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            analyzed = conn.exec_driver_sql(
                "SELECT s.last_analyze IS NOT NULL, c.reltuples FROM pg_stat_user_tables s"
                " JOIN pg_class c ON c.oid = s.relid WHERE s.relname = 'rm_author_stats'"
            ).one()
            assert tuple(analyzed) == (True, 3)
        else:  # SQLite keeps the plans it had: no statistics are collected
            assert "sqlite_stat1" not in inspect(conn).get_table_names()


def test_indexes_and_primary_key_survive_the_swap(engine: Engine, library: BackfillLibrary) -> None:
    backfill(engine, library.model)
    backfill(engine, library.model)

    inspector = inspect(engine)
    assert [ix["name"] for ix in inspector.get_indexes("rm_author_stats")] == [
        "ix_rm_author_stats_name"
    ]
    assert inspector.get_pk_constraint("rm_author_stats")["constrained_columns"] == ["author_id"]
    leftovers = [name for name in inspector.get_table_names() if "__build" in name]
    assert leftovers == []


def test_a_reader_sees_the_old_rows_until_commit_then_the_new(
    engine: Engine, library: BackfillLibrary
) -> None:
    old = [(7, "Old", 1, 1, 1.0, None)]
    with engine.begin() as conn:
        conn.execute(
            insert(library.stats),
            {"author_id": 7, "name": "Old", "books": 1, "pages": 1, "avg_price": 1.0},
        )
    seen: dict[str, list[tuple[Any, ...]]] = {}
    reader = engine.connect()

    def look(_name: str, phase: str) -> None:
        # A separate connection reads while the build transaction is open.
        seen[phase] = library.stats_rows(reader)
        reader.rollback()

    try:
        backfill(engine, library.model, progress=look)
    finally:
        reader.close()

    assert seen == {
        "lock": old,
        "build": old,
        "swap": old,
        "analyze": old,
        "commit": old,
        "done": EXPECTED,
    }


def test_a_failure_mid_swap_leaves_the_old_rows(engine: Engine, library: BackfillLibrary) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(library.stats),
            {"author_id": 7, "name": "Old", "books": 1, "pages": 1, "avg_price": 1.0},
        )

    def explode(_name: str, phase: str) -> None:
        if phase == "commit":
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        backfill(engine, library.model, progress=explode)

    with engine.connect() as conn:
        assert library.stats_rows(conn) == [(7, "Old", 1, 1, 1.0, None)]


def test_a_command_writing_during_the_build_waits_and_is_not_lost(
    engine: Engine, library: BackfillLibrary
) -> None:
    """A projection increment attempted mid-build blocks on the lock, then applies on top."""
    writer_done = threading.Event()
    errors: list[BaseException] = []

    def command() -> None:
        try:
            with engine.begin() as conn:
                conn.execute(
                    update(library.authors).where(library.authors.c.id == 3), {"name": "Cy"}
                )
                increment(
                    conn,
                    library.stats,
                    {"author_id": 3},
                    {"books": 1, "pages": 10},
                    {"name": "Cy", "books": 0, "pages": 0},
                )
        except BaseException as error:  # reported to the test thread below
            errors.append(error)
        finally:
            writer_done.set()

    thread = threading.Thread(target=command)
    blocked_at_commit: list[bool] = []

    def hook(_name: str, phase: str) -> None:
        if phase == "build":
            thread.start()
        if phase == "commit":
            blocked_at_commit.append(not writer_done.wait(timeout=0.5))

    backfill(engine, library.model, progress=hook)
    thread.join(timeout=20)

    assert errors == []
    assert blocked_at_commit == [True]
    with engine.connect() as conn:
        assert library.stats_rows(conn)[2] == (3, "Cy", 1, 10, None, None)


def test_backfill_all_reports_each_model_and_every_phase(
    engine: Engine, library: BackfillLibrary
) -> None:
    phases: list[tuple[str, str]] = []

    results = backfill_all(
        engine, [library.model], lambda name, phase: phases.append((name, phase))
    )

    assert [(r.name, r.rows) for r in results] == [("author_stats", 3)]
    assert all(isinstance(r, BackfillResult) for r in results)
    assert phases == [("author_stats", phase) for phase in PHASES]


def test_a_source_column_the_table_lacks_is_refused(
    engine: Engine, library: BackfillLibrary
) -> None:
    broken = ReadModel(
        "broken",
        library.stats,
        lambda: select(
            library.authors.c.id.label("author_id"), library.authors.c.name.label("nom")
        ),
    )

    with pytest.raises(ValueError, match=r"\['nom'\]"):
        backfill(engine, broken)
