"""Declaring a read model: the denormalized table and how to compute it from the source.

A read model is derived data. Its ``source`` is one SELECT over the source-of-truth tables
that yields exactly the rows the table should hold (labelled like the table's columns).
That single declaration drives the backfill (INSERT ... SELECT into a fresh table), verify
(compare the SELECT with the table) and repair (rewrite only the rows that differ).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, Table


@dataclass(frozen=True)
class ReadModel:
    name: str
    table: Table
    #: Builds the SELECT computing every row of ``table`` from the source tables.
    source: Callable[[], Select[Any]]
    #: Source tables whose writes change this model; the write guard watches them.
    depends_on: frozenset[str] = field(default_factory=frozenset)
    #: Columns a comparison ignores (e.g. a ``refreshed_at`` stamp).
    ignore_columns: frozenset[str] = field(default_factory=frozenset)

    @property
    def key(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.table.primary_key.columns)

    @property
    def compared_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.table.columns if c.name not in self.ignore_columns)
