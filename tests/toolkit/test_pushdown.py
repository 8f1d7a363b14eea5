"""A keyed refresh pushes its key into the source's GROUP BY subqueries: the same rows,
without aggregating every other key's rows first (SQLite cannot do it on its own)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import (
    Column,
    ForeignKey,
    Integer,
    MetaData,
    Table,
    bindparam,
    create_engine,
    func,
    insert,
    select,
)
from sqlalchemy.dialects import sqlite

from cqrs_layer.read.pushdown import pushed_down

metadata = MetaData()
authors = Table("authors", metadata, Column("id", Integer, primary_key=True))
books = Table(
    "books",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("author_id", ForeignKey("authors.id")),
    Column("pages", Integer),
)


def per_author_source():
    per_book = (
        select(books.c.id, books.c.author_id, func.sum(books.c.pages).label("pages"))
        .group_by(books.c.id, books.c.author_id)
        .subquery("per_book")
    )
    totals = (
        select(per_book.c.author_id, func.count().label("n"), func.sum(per_book.c.pages).label("p"))
        .group_by(per_book.c.author_id)
        .subquery("totals")
    )
    return select(
        authors.c.id.label("author_id"),
        func.coalesce(totals.c.n, 0).label("books"),
        func.coalesce(totals.c.p, 0).label("pages"),
    ).outerjoin(totals, totals.c.author_id == authors.c.id)


KEY = bindparam("k0", type_=Integer)


def compiled(statement) -> str:
    return str(statement.compile(dialect=sqlite.dialect()))


def test_the_key_reaches_every_aggregate_subquery_joined_or_selected_from():
    sql = compiled(pushed_down(per_author_source(), {"author_id": KEY}))

    assert "WHERE books.author_id = ? GROUP BY books.id" in sql
    assert "WHERE per_book.author_id = ? GROUP BY per_book.author_id" in sql


def test_a_source_without_such_subqueries_is_left_as_it_is():
    source = select(books.c.author_id.label("author_id"), books.c.pages.label("pages"))

    assert pushed_down(source, {"author_id": KEY}) is source


@settings(max_examples=30, deadline=None)
@given(
    pages=st.lists(st.tuples(st.integers(1, 4), st.integers(0, 500)), max_size=12),
    key=st.integers(1, 5),
)
def test_pushed_down_or_not_the_rows_of_a_key_are_the_same(pages, key):
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(insert(authors), [{"id": i} for i in range(1, 5)])
        if pages:
            rows = [{"author_id": a, "pages": p} for a, p in pages]
            connection.execute(insert(books), rows)
        plain = per_author_source().subquery()
        keyed = pushed_down(per_author_source(), {"author_id": KEY}).subquery()
        expected = connection.execute(select(plain).where(plain.c.author_id == key)).all()
        got = connection.execute(select(keyed).where(keyed.c.author_id == KEY), {"k0": key})
        assert got.all() == expected
