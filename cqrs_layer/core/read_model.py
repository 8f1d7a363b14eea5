"""Declaring a read model: the denormalized table and how to compute it from the source.

A read model is derived data. Its ``source`` is one SELECT over the source-of-truth tables
that yields exactly the rows the table should hold (labelled like the table's columns).
That single declaration drives everything: the backfill (INSERT ... SELECT), verify
(compare the SELECT with the table), repair (rewrite the rows that differ), and keeping it
current: the tables it depends on, the columns it reads and how a changed row maps to its
keys are derived from the SELECT (:mod:`cqrs_layer.core.lineage`), capture triggers record
the keys every write changes, and a refresh recomputes exactly those rows from the SELECT
restricted to them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, Table

from .lineage import Lineage, lineage


@dataclass(frozen=True, eq=False)
class ReadModel:
    name: str
    table: Table
    #: Builds the SELECT computing every row of ``table`` from the source tables.
    source: Callable[[], Select[Any]]
    #: Per source table (a ``Table`` or a mapped class), how a changed row maps to the
    #: refresh keys: a column or expression of it per key column (a tuple for several), a
    #: SELECT correlated to it returning the keys, or a list of those. Only for what
    #: cannot be derived from the source (see :mod:`cqrs_layer.core.lineage`).
    keys_from: Mapping[Any, Any] = field(default_factory=dict)
    #: The columns that identify a unit of refresh: a change recomputes every row sharing
    #: these values. Default: the table's primary key. Coarser when rows of one unit
    #: depend on each other (running totals per product: ``("product_id",)``).
    refresh_by: Sequence[str] = ()
    #: Columns a comparison ignores (e.g. a ``refreshed_at`` stamp).
    ignore_columns: frozenset[str] = field(default_factory=frozenset)
    #: Derived from the rest: the tables and columns the source reads, and key mappings.
    lineage: Lineage = field(init=False)

    def __post_init__(self) -> None:
        if not self.key:
            raise ValueError(f"read model {self.name!r}: its table needs a primary key")
        refresh_by = tuple(self.refresh_by) or self.key
        unknown = [column for column in refresh_by if column not in self.table.c]
        if unknown:
            raise ValueError(f"read model {self.name!r}: refresh_by names {unknown}, not columns")
        object.__setattr__(self, "refresh_by", refresh_by)
        # Worked out once, here: a declaration that cannot be kept current fails at import.
        object.__setattr__(
            self, "lineage", lineage(self.name, self.source(), refresh_by, self.keys_from)
        )

    @property
    def key(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.table.primary_key.columns)

    @property
    def depends_on(self) -> frozenset[str]:
        """The source tables, as derived from the SELECT."""
        return frozenset(self.lineage.tables)

    @property
    def compared_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.table.columns if c.name not in self.ignore_columns)
