"""Projections apply each stored event at most once, inline, and fail loudly; plus the
dialect-aware upsert/increment helpers they write with."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    func,
    insert,
    select,
)
from sqlalchemy.exc import IntegrityError

from cqrs_layer import Event, Projection, ProjectionContext
from cqrs_layer.core.messages import StoredEvent
from cqrs_layer.core.tables import outbox as outbox_table
from cqrs_layer.core.tables import projection_tracking
from cqrs_layer.read.projections import ProjectionDispatcher
from cqrs_layer.sql import increment, insert_if_absent, upsert
from cqrs_layer.write import outbox


class BookShelved(Event):
    event_type: ClassVar[str] = "projection_tests.BookShelved"
    aggregate_type: ClassVar[str] = "book"

    id: int
    author: str
    pages: int


class BookLent(Event):
    event_type: ClassVar[str] = "projection_tests.BookLent"
    aggregate_type: ClassVar[str] = "book"

    id: int


class Shelf:
    metadata = MetaData()
    author_stats = Table(
        "rp_author_stats",
        metadata,
        Column("author", String(50), primary_key=True),
        Column("books", Integer, nullable=False),
        Column("pages", Integer, nullable=False),
        Column("label", String(50), nullable=True),
    )
    slugs = Table(
        "rp_slugs",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("slug", String(50), nullable=False),
        Column("title", String(50), nullable=False),
        UniqueConstraint("slug", name="uq_rp_slugs_slug"),
    )


@pytest.fixture(autouse=True)
def shelf(engine: Engine) -> Iterator[None]:
    """The shelf's tables on the conftest's ``engine`` (which empties the outbox and the
    tracking table around each test)."""
    Shelf.metadata.drop_all(engine)
    Shelf.metadata.create_all(engine)
    yield
    Shelf.metadata.drop_all(engine)


def stats_projection(name: str = "author_stats") -> Projection:
    projection = Projection(name)

    @projection.on(BookShelved)
    def _(event: BookShelved, ctx: ProjectionContext) -> None:
        increment(
            ctx.connection,
            Shelf.author_stats,
            {"author": event.author},
            {"books": 1, "pages": event.pages},
        )

    return projection


def record(conn: Connection, *events: Event) -> list[StoredEvent]:
    return outbox.append(conn, events, correlation_id="req-1")


def stats(conn: Connection) -> list[tuple[Any, ...]]:
    table = Shelf.author_stats
    return [tuple(r) for r in conn.execute(select(table).order_by(table.c.author))]


def tracking(conn: Connection) -> list[tuple[Any, ...]]:
    t = projection_tracking
    return [tuple(r) for r in conn.execute(select(t).order_by(t.c.projection, t.c.position))]


def test_the_same_stored_event_applied_twice_counts_once(engine: Engine) -> None:
    dispatcher = ProjectionDispatcher([stats_projection()])
    with engine.begin() as conn:
        stored = record(conn, BookShelved(id=1, author="Ann", pages=100))
        dispatcher.apply(conn, stored)
    with engine.begin() as conn:
        dispatcher.apply(conn, stored)
        dispatcher.apply(conn, stored)

    with engine.connect() as conn:
        assert stats(conn) == [("Ann", 1, 100, None)]
        assert tracking(conn) == [("author_stats", stored[0].position)]


def test_each_projection_applies_an_event_once(engine: Engine) -> None:
    dispatcher = ProjectionDispatcher([stats_projection("first"), stats_projection("second")])
    with engine.begin() as conn:
        stored = record(conn, BookShelved(id=1, author="Ann", pages=100))
        dispatcher.apply(conn, stored)
        dispatcher.apply(conn, stored)

        # Both projections write the same counter here, so it counts twice, not four times.
        assert stats(conn) == [("Ann", 2, 200, None)]
        position = stored[0].position
        assert tracking(conn) == [("first", position), ("second", position)]


def test_a_failing_handler_raises_and_leaves_nothing(engine: Engine) -> None:
    broken = Projection("broken")

    @broken.on(BookShelved)
    def _(event: BookShelved, ctx: ProjectionContext) -> None:
        ctx.connection.execute(insert(Shelf.author_stats), {"author": "x", "books": 1, "pages": 1})
        raise ZeroDivisionError("bug in projection")

    dispatcher = ProjectionDispatcher([stats_projection(), broken])
    with pytest.raises(ZeroDivisionError) as raised, engine.begin() as conn:
        dispatcher.apply(conn, record(conn, BookShelved(id=1, author="Ann", pages=100)))

    assert "in projection 'broken' applying projection_tests.BookShelved" in str(
        raised.value.__notes__
    )
    with engine.connect() as conn:
        assert stats(conn) == []
        assert tracking(conn) == []
        assert conn.scalar(select(func.count()).select_from(outbox_table)) == 0


def test_events_offered_again_are_applied_once(engine: Engine) -> None:
    dispatcher = ProjectionDispatcher([stats_projection("a"), stats_projection("b")])
    with engine.begin() as conn:
        stored = record(conn, BookShelved(id=1, author="Ann", pages=10))
        assert dispatcher.apply(conn, stored) == 2  # one per projection
        assert dispatcher.apply(conn, stored) == 0
        assert dispatcher.apply(conn, [*stored, *stored]) == 0
        assert stats(conn) == [("Ann", 2, 20, None)]  # both projections, each once


def test_only_projections_handling_the_type_are_called(engine: Engine) -> None:
    calls: list[tuple[str, int]] = []
    lending = Projection("lending")

    @lending.on(BookLent)
    def _(event: BookLent, ctx: ProjectionContext) -> None:
        calls.append((type(event).__name__, ctx.stored.position))
        assert ctx.stored.correlation_id == "req-1"

    dispatcher = ProjectionDispatcher([stats_projection(), lending])
    with engine.begin() as conn:
        shelved, lent = record(conn, BookShelved(id=1, author="Ann", pages=5), BookLent(id=1))
        dispatcher.apply(conn, [shelved, lent])

        assert calls == [("BookLent", lent.position)]
        assert stats(conn) == [("Ann", 1, 5, None)]
        assert tracking(conn) == [("author_stats", shelved.position), ("lending", lent.position)]
    assert dispatcher.handled_event_types() == {
        "projection_tests.BookShelved",
        "projection_tests.BookLent",
    }


def test_registration_mistakes_are_refused() -> None:
    projection = stats_projection("dupe")
    dispatcher = ProjectionDispatcher([projection])
    dispatcher.add(projection)  # the same object again is harmless
    with pytest.raises(ValueError, match="already registered"):
        dispatcher.add(stats_projection("dupe"))
    with pytest.raises(ValueError, match="already handles"):
        projection.on(BookShelved)(lambda event, ctx: None)
    with pytest.raises(ValueError, match="1-100 characters"):
        Projection("x" * 101)


def test_upsert_inserts_then_overwrites(engine: Engine) -> None:
    table = Shelf.author_stats
    with engine.begin() as conn:
        upsert(conn, table, {"author": "Ann", "books": 1, "pages": 10, "label": "new"})
        upsert(conn, table, {"author": "Ann", "books": 2, "pages": 20})
        upsert(conn, table, {"author": "Bob", "books": 1, "pages": 1})
        upsert(
            conn,
            table,
            {"author": "Bob", "books": 0, "pages": 0},
            update={"label": "seen", "books": table.c.books + 5},
        )

        assert stats(conn) == [("Ann", 2, 20, "new"), ("Bob", 6, 1, "seen")]


def test_upsert_on_a_unique_key_other_than_the_primary_key(engine: Engine) -> None:
    slugs = Shelf.slugs
    with engine.begin() as conn:
        upsert(conn, slugs, {"id": 1, "slug": "dune", "title": "Dune"}, key=("slug",))
        upsert(conn, slugs, {"id": 2, "slug": "dune", "title": "Dune II"}, key=("slug",))

        assert [tuple(r) for r in conn.execute(select(slugs))] == [(1, "dune", "Dune II")]


def test_increment_creates_with_defaults_then_adds(engine: Engine) -> None:
    table = Shelf.author_stats
    with engine.begin() as conn:
        increment(conn, table, {"author": "Ann"}, {"books": 1, "pages": 5}, {"label": "first"})
        increment(conn, table, {"author": "Ann"}, {"books": 2, "pages": -1}, {"label": "other"})
        increment(conn, table, {"author": "Bob"}, {"books": 1}, {"pages": 7, "books": 10})

        assert stats(conn) == [("Ann", 3, 4, "first"), ("Bob", 11, 7, None)]


def test_insert_if_absent_reports_whether_it_inserted(engine: Engine) -> None:
    table = Shelf.author_stats
    row = {"author": "Ann", "books": 1, "pages": 1}
    with engine.begin() as conn:
        assert insert_if_absent(conn, table, row) is True
        assert insert_if_absent(conn, table, {**row, "books": 9}) is False
        assert conn.execute(select(func.sum(table.c.books))).scalar_one() == 1


# ---------------------------------------------------------------- batched round trips


def batched_stats_projection(name: str = "batched") -> Projection:
    projection = Projection(name, batch_round_trips=True)

    @projection.on(BookShelved)
    def _(event: BookShelved, ctx: ProjectionContext) -> None:
        increment(
            ctx.connection,
            Shelf.author_stats,
            {"author": event.author},
            {"books": 1, "pages": event.pages},
        )
        # A read in the middle of the batch still sees the writes before it.
        books = ctx.connection.execute(
            select(Shelf.author_stats.c.books).where(Shelf.author_stats.c.author == event.author)
        ).scalar_one()
        ctx.connection.execute(
            Shelf.author_stats.update()
            .where(Shelf.author_stats.c.author == event.author)
            .values(label=f"{books} book(s)")
        )

    return projection


def test_batched_projections_apply_in_event_order_with_reads_in_between(
    engine: Engine,
) -> None:
    dispatcher = ProjectionDispatcher([batched_stats_projection()])
    with engine.begin() as conn:
        stored = record(
            conn,
            BookShelved(id=1, author="Ann", pages=100),
            BookShelved(id=2, author="Ann", pages=50),
            BookShelved(id=3, author="Bob", pages=10),
        )
        dispatcher.apply(conn, stored)

    with engine.connect() as conn:
        assert stats(conn) == [("Ann", 2, 150, "2 book(s)"), ("Bob", 1, 10, "1 book(s)")]
        assert [row[0] for row in tracking(conn)] == ["batched"] * 3


def test_batched_and_unbatched_projections_each_apply_once(engine: Engine) -> None:
    dispatcher = ProjectionDispatcher([stats_projection("plain"), batched_stats_projection()])
    with engine.begin() as conn:
        stored = record(conn, BookShelved(id=1, author="Ann", pages=100))
        dispatcher.apply(conn, stored)
        dispatcher.apply(conn, stored)

        assert stats(conn) == [("Ann", 2, 200, "1 book(s)")]
        assert sorted(row[0] for row in tracking(conn)) == ["batched", "plain"]


def test_a_database_error_in_a_batch_fails_the_transaction_and_leaves_nothing(
    engine: Engine,
) -> None:
    """On PostgreSQL the failing statement's error arrives with a later reply (at the
    batch's final sync, outside SQLAlchemy); it must still fail the apply as SQLAlchemy's
    IntegrityError, which callers recover from, and the rollback must remove every write
    of the batch."""
    duplicate = Projection("duplicate", batch_round_trips=True)

    @duplicate.on(BookShelved)
    def _(event: BookShelved, ctx: ProjectionContext) -> None:
        row = {"id": event.id, "slug": "same", "title": event.author}
        ctx.connection.execute(insert(Shelf.slugs), row)
        ctx.connection.execute(insert(Shelf.slugs), {**row, "id": event.id + 100})  # slug taken

    dispatcher = ProjectionDispatcher([stats_projection(), duplicate])
    with pytest.raises(IntegrityError, match=r"uq_rp_slugs_slug|UNIQUE"), engine.begin() as conn:
        dispatcher.apply(conn, record(conn, BookShelved(id=1, author="Ann", pages=100)))

    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Shelf.slugs)).scalar_one() == 0
        assert stats(conn) == []
        assert tracking(conn) == []


def test_a_python_error_in_a_batched_handler_propagates_and_leaves_nothing(
    engine: Engine,
) -> None:
    broken = Projection("broken_batched", batch_round_trips=True)

    @broken.on(BookShelved)
    def _(event: BookShelved, ctx: ProjectionContext) -> None:
        ctx.connection.execute(insert(Shelf.author_stats), {"author": "x", "books": 1, "pages": 1})
        raise ZeroDivisionError("bug in a batched projection")

    dispatcher = ProjectionDispatcher([broken])
    with pytest.raises(ZeroDivisionError, match="batched projection"), engine.begin() as conn:
        dispatcher.apply(conn, record(conn, BookShelved(id=1, author="Ann", pages=100)))

    with engine.connect() as conn:
        assert stats(conn) == []
        assert tracking(conn) == []
