"""Helpers the toolkit's tests share: settings, comparison rows, flags written behind the
store's back, a controllable clock, query counting, and the rollout parts built without
a Flask app."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import Flask
from sqlalchemy import Connection, Engine, MetaData, Table, event, insert, select, text

from cqrs_layer import allow_unguarded_writes
from cqrs_layer.core.registry import Endpoint, Registry
from cqrs_layer.core.settings import Settings
from cqrs_layer.core.tables import captures, changes, flags
from cqrs_layer.ops.context import Toolkit, toolkit_of
from cqrs_layer.rollout.changes import StageChange, StageChanges
from cqrs_layer.rollout.demotion import Demotion
from cqrs_layer.rollout.flags import FlagStore
from cqrs_layer.rollout.gate import Gate
from cqrs_layer.rollout.history import ComparisonHistory, ComparisonResult
from cqrs_layer.schema import metadata as toolkit_metadata
from cqrs_layer.testing import ClosingClient

from .toyapp import ToyBase, db


def settings(**config: Any) -> Settings:
    """The settings ``config`` (``CQRS_*`` keys) gives, validated as ``init_app`` does."""
    return Settings.from_config(config)


#: The ``make_toy_app`` fixture: builds the toy app with the given ``CQRS_*`` settings.
MakeToyApp = Callable[..., Flask]


# ---------------------------------------------------------------- the toy app's tables


def empty_tables(engine: Engine, *metadatas: MetaData) -> None:
    """Every row gone, ids restarted; but not which capture triggers are installed
    (``cqrs_captures``: the triggers stay), and not what emptying itself recorded."""
    tables = [
        t for metadata in metadatas for t in reversed(metadata.sorted_tables) if t is not captures
    ]
    with allow_unguarded_writes(), engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                conn.execute(table.delete())
        if changes in tables:
            conn.execute(changes.delete())


@contextmanager
def running(app: Flask) -> Iterator[Flask]:
    """``app`` in its app context on fresh tables; afterwards its comparisons finished,
    its tables emptied, its connections closed."""
    app.test_client_class = ClosingClient  # closes responses, as servers do
    with app.app_context():
        ToyBase.metadata.create_all(db.engine)
        toolkit_metadata.create_all(db.engine)
        empty_tables(db.engine, ToyBase.metadata, toolkit_metadata)
        try:
            yield app
        finally:
            finished = toolkit_of(app).comparisons.pool().shutdown(10)
            db.session.remove()
            empty_tables(db.engine, ToyBase.metadata, toolkit_metadata)
            db.engine.dispose()
    assert finished, "comparisons still running 10 s after the test"


def table_rows(engine: Engine, table: Table) -> list[dict[str, Any]]:
    """Rows as another connection sees them (only what committed), by primary key."""
    with engine.connect() as connection:
        rows = connection.execute(select(table).order_by(*table.primary_key.columns)).mappings()
        return [dict(row) for row in rows]


def toy_registry() -> Registry:
    """The toy app's wrapped endpoints, declared directly (no Flask app)."""
    registry = Registry()
    registry.add_endpoint(Endpoint("library.add_book", "write", writes=frozenset({"books"})))
    registry.add_endpoint(Endpoint("library.get_book", "read", read_models=("book_shelf",)))
    registry.add_endpoint(
        Endpoint("library.lend_book", "write", writes=frozenset({"books", "loans"}))
    )
    registry.add_endpoint(Endpoint("library.rename_book", "write", writes=frozenset({"books"})))
    return registry


# ---------------------------------------------------------------- comparisons


def comparison(endpoint: str, outcome: str = "match", **fields: Any) -> ComparisonResult:
    """One comparison row of ``endpoint``: a shadow GET both paths answered 200, unless told."""
    values: dict[str, Any] = {
        "stage": "shadow",
        "served_by": "legacy",
        "method": "GET",
        "path": "/library/books/1",
        "legacy_status": 200,
        "new_status": 200,
        **fields,
    }
    return ComparisonResult(endpoint=endpoint, outcome=outcome, **values)


def record_comparisons(
    history: ComparisonHistory, endpoint: str, count: int, outcome: str = "match", **fields: Any
) -> None:
    for _ in range(count):
        history.record(comparison(endpoint, outcome, **fields))


def make_ready(toolkit: Toolkit, endpoint: str) -> None:
    """Record as many matching comparisons as the promotion gate wants."""
    settings = toolkit.settings
    record_comparisons(toolkit.history, endpoint, settings.promotion_min_comparisons)


# ---------------------------------------------------------------- flags


def change(
    toolkit: Toolkit | StageChanges, endpoint: str, stage: str, **options: Any
) -> StageChange:
    """A stage change by ``ops`` for a test's reason, unless the options say otherwise."""
    changes = toolkit.changes if isinstance(toolkit, Toolkit) else toolkit
    options.setdefault("actor", "ops")
    options.setdefault("reason", "test")
    return changes.change(endpoint, stage, **options)


def write_flag_row(
    engine: Engine, endpoint: str, stage: str, *, kind: str = "read", percent: float = 100.0
) -> None:
    """A change committed by another process: this process's cache knows nothing of it."""
    with engine.begin() as connection:
        connection.execute(
            insert(flags).values(
                endpoint=endpoint,
                kind=kind,
                stage=stage,
                percent=percent,
                sample_rate=1.0,
                updated_at=datetime.now(UTC).replace(tzinfo=None),
                updated_by="elsewhere",
                version=1,
            )
        )


class FakeClock:
    """Stands in for the ``time`` module of the module under test: its clocks only move
    when the test says so."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def monotonic(self) -> float:
        return self.now

    def perf_counter(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@contextmanager
def counting_queries(engine: Engine) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


# ---------------------------------------------------------------- a slow query


def run_slow_sql(connection: Connection) -> None:
    """A query that runs for a minute or more unless the database stops it."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SELECT pg_sleep(60)")
    else:
        connection.exec_driver_sql(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
            "WHERE x < 1000000000) SELECT count(*) FROM c"
        )


def slow_queries_still_running(engine: Engine) -> int:
    """PostgreSQL: how many ``run_slow_sql`` queries other connections are still running."""
    with engine.connect() as connection:
        return int(
            connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                    "AND query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid() "
                    "AND datname = current_database()"
                )
            ).scalar_one()
        )


# ---------------------------------------------------------------- the rollout, without Flask


@dataclass(frozen=True)
class Rollout:
    """The rollout parts wired as ``init_app`` wires them, on a plain engine."""

    settings: Settings
    registry: Registry
    flags: FlagStore
    history: ComparisonHistory
    gate: Gate
    changes: StageChanges
    demotion: Demotion


def rollout(
    engine: Engine,
    registry: Registry,
    learned_writers: dict[str, frozenset[str]] | None = None,
    captured: frozenset[str] = frozenset(),
    **config: Any,
) -> Rollout:
    """The rollout parts on ``engine``; ``captured``: the read models with change capture."""
    chosen = settings(**config)
    store = FlagStore(engine, registry, chosen)
    history = ComparisonHistory(engine, chosen.comparison_history)
    learned = dict(learned_writers or {})
    gate = Gate(registry, engine, store, history, lambda: learned, captured.__contains__, chosen)
    changes = StageChanges(registry, store, gate)
    demotion = Demotion(store, changes, history, chosen)
    return Rollout(chosen, registry, store, history, gate, changes, demotion)
