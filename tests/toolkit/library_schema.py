"""A tiny library schema for the read-model tests: authors + books -> author_stats."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    func,
    select,
)

from cqrs_layer import ReadModel


class Library:
    """authors + books as the source, author_stats as the read model, on a fresh MetaData.

    ``prefix`` names the tables, so test modules sharing a database keep theirs apart.
    """

    def __init__(self, prefix: str) -> None:
        self.metadata = MetaData()
        self.authors = Table(
            f"{prefix}_authors",
            self.metadata,
            Column("id", Integer, primary_key=True),
            Column("name", String(50), nullable=False),
        )
        self.books = Table(
            f"{prefix}_books",
            self.metadata,
            Column("id", Integer, primary_key=True),
            Column("author_id", ForeignKey(f"{prefix}_authors.id"), nullable=False),
            Column("pages", Integer, nullable=False),
            Column("price", Float, nullable=False),
            Column("published_at", DateTime, nullable=False),
        )
        self.stats = Table(
            f"{prefix}_author_stats",
            self.metadata,
            Column("author_id", Integer, primary_key=True),
            Column("name", String(50), nullable=False),
            Column("books", Integer, nullable=False),
            Column("pages", Integer, nullable=False),
            Column("avg_price", Float, nullable=True),
            Column("last_published", DateTime, nullable=True),
            Column("refreshed_at", DateTime, nullable=True),
            Index(f"ix_{prefix}_author_stats_name", "name"),
        )
        self.model = ReadModel(
            "author_stats",
            self.stats,
            self.source,
            ignore_columns=frozenset({"refreshed_at"}),
        )

    def source(self) -> Any:
        a, b = self.authors, self.books
        return (
            select(
                a.c.id.label("author_id"),
                a.c.name,
                func.count(b.c.id).label("books"),
                func.coalesce(func.sum(b.c.pages), 0).label("pages"),
                func.avg(b.c.price).label("avg_price"),
                func.max(b.c.published_at).label("last_published"),
            )
            .select_from(a.outerjoin(b))
            .group_by(a.c.id, a.c.name)
        )
