"""Time backfill, verify and repair on a ~300k-row SQLite source (run by hand).

    .venv/bin/python bench/readmodel_backfill_verify.py [--books 300000]

Two read models over authors (books/10) and books: ``book_view`` (one row per book, the
worst case for a copy-in swap) and ``author_stats`` (an aggregate). For the backfill it
also times the two swaps we did not choose, so the choice in cqrs_layer/backfill.py can
be re-checked: "rename" (build a real table, drop the old one, rename, re-create the
indexes) and "direct" (DELETE + INSERT ... SELECT straight into the live table).
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    text,
    update,
)

from cqrs_layer.core.read_model import ReadModel
from cqrs_layer.core.sql import write_locked
from cqrs_layer.read.backfill import backfill, source_columns
from cqrs_layer.read.verify import verify

metadata = MetaData()
authors = Table(
    "authors",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(50), nullable=False),
)
books = Table(
    "books",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("author_id", ForeignKey("authors.id"), nullable=False, index=True),
    Column("title", String(80), nullable=False),
    Column("pages", Integer, nullable=False),
    Column("price", Float, nullable=False),
    Column("published_at", DateTime, nullable=False),
)
book_view = Table(
    "book_view",
    metadata,
    Column("book_id", Integer, primary_key=True),
    Column("title", String(80), nullable=False),
    Column("author_name", String(50), nullable=False),
    Column("pages", Integer, nullable=False),
    Column("price", Float, nullable=False),
    Index("ix_book_view_author_name", "author_name"),
)
author_stats = Table(
    "author_stats",
    metadata,
    Column("author_id", Integer, primary_key=True),
    Column("name", String(50), nullable=False),
    Column("books", Integer, nullable=False),
    Column("pages", Integer, nullable=False),
    Column("avg_price", Float, nullable=True),
    Column("last_published", DateTime, nullable=True),
    Index("ix_author_stats_name", "name"),
)

BOOK_VIEW = ReadModel(
    "book_view",
    book_view,
    lambda: select(
        books.c.id.label("book_id"),
        books.c.title,
        authors.c.name.label("author_name"),
        books.c.pages,
        books.c.price,
    ).join_from(books, authors),
)
AUTHOR_STATS = ReadModel(
    "author_stats",
    author_stats,
    lambda: (
        select(
            authors.c.id.label("author_id"),
            authors.c.name,
            func.count(books.c.id).label("books"),
            func.coalesce(func.sum(books.c.pages), 0).label("pages"),
            func.avg(books.c.price).label("avg_price"),
            func.max(books.c.published_at).label("last_published"),
        )
        .select_from(authors.outerjoin(books))
        .group_by(authors.c.id, authors.c.name)
    ),
)


def make_engine(path: str) -> Engine:
    engine = create_engine(f"sqlite:///{path}")

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()

    return engine


def seed(engine: Engine, n_books: int) -> None:
    rng = random.Random(7)
    n_authors = max(1, n_books // 10)
    start = datetime(2020, 1, 1)
    with engine.begin() as conn:
        conn.execute(
            insert(authors), [{"id": i, "name": f"author {i}"} for i in range(1, n_authors + 1)]
        )
        conn.execute(
            insert(books),
            [
                {
                    "id": i,
                    "author_id": rng.randint(1, n_authors),
                    "title": f"title {i}",
                    "pages": rng.randint(50, 900),
                    "price": rng.randint(100, 9000) / 100,
                    "published_at": start + timedelta(minutes=i),
                }
                for i in range(1, n_books + 1)
            ],
        )


def rename_swap(engine: Engine, model: ReadModel) -> None:
    """The rejected alternative: build a real table and rename it over the live one."""
    table, columns = model.table, source_columns(model)
    build_name = f"{table.name}__build"
    build = Table(
        build_name,
        MetaData(),
        *(Column(c.name, c.type, primary_key=c.primary_key) for c in table.columns),
    )
    with write_locked(engine, table) as conn:
        build.create(conn)
        conn.execute(insert(build).from_select(columns, model.source()))
        table.drop(conn)
        conn.execute(text(f"ALTER TABLE {build_name} RENAME TO {table.name}"))
        for index in table.indexes:
            index.create(conn)


def direct_swap(engine: Engine, model: ReadModel) -> None:
    """Also measured: no build table, DELETE + INSERT ... SELECT into the live table."""
    with write_locked(engine, model.table) as conn:
        conn.execute(delete(model.table))
        conn.execute(insert(model.table).from_select(source_columns(model), model.source()))


def timed(label: str, action: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    result = action()
    print(f"  {label:<44} {time.perf_counter() - started:6.2f}s")
    return result


def drift(engine: Engine, model: ReadModel, every: int) -> None:
    """Damage every ``every``-th row three ways: delete, change, and add a stray row."""
    table = model.table
    key = table.c[model.key[0]]
    changed = next(c for c in table.columns if isinstance(c.type, Integer) and not c.primary_key)
    with engine.begin() as conn:
        conn.execute(delete(table).where(key % every == 0))
        conn.execute(update(table).where(key % every == 1).values({changed.name: changed + 1}))
        top = conn.execute(select(func.max(key))).scalar_one()
        conn.execute(
            insert(table).from_select(
                [column.name for column in table.columns],
                select(*(c + top if c is key else c for c in table.columns)).where(
                    key % every == 2
                ),
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--books", type=int, default=300_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"{tmp}/bench.db")
        metadata.create_all(engine)
        timed(f"seed {args.books} books", lambda: seed(engine, args.books))
        for model in (BOOK_VIEW, AUTHOR_STATS):
            print(f"{model.name}:")
            first = timed(
                "backfill (empty table, copy-in swap)", lambda m=model: backfill(engine, m)
            )
            timed("backfill (full table, copy-in swap)", lambda m=model: backfill(engine, m))
            timed("rename swap (rejected)", lambda m=model: rename_swap(engine, m))
            timed("direct DELETE + INSERT SELECT", lambda m=model: direct_swap(engine, m))
            print(f"  rows: {first.rows}")
            report = timed("verify (clean)", lambda m=model: verify(engine, m))
            assert report.ok, "a fresh backfill must verify clean"
            drift(engine, model, every=100)
            report = timed("verify (1% drift x3)", lambda m=model: verify(engine, m))
            counts = (len(report.missing), len(report.extra), len(report.different))
            print("  drift: missing={} extra={} different={}".format(*counts))
            timed("verify --repair", lambda m=model: verify(engine, m, repair=True))
            assert timed("verify (after repair)", lambda m=model: verify(engine, m)).ok
        engine.dispose()


if __name__ == "__main__":
    main()
