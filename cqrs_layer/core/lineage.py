"""A read model's lineage, from its ``source()`` SELECT: the tables and columns it reads,
and how a changed row of each table maps to the keys of the read-model rows to recompute.

The key mapping of a source table is, in order of preference:

1. declared (``ReadModel(keys_from={table: ...})``): a column or SQL expression of the
   table (one per refresh-key column), a SELECT correlated to the table's columns that
   returns the keys, or a list of those;
2. direct: the SELECT computes every refresh-key column from this table's columns alone
   (``Product.id.label("product_id")``, ``utc_date(Order.created_at).label("day")``);
3. the table's own columns named like the keys (``stock.product_id``);
4. through the source's equality conditions (``OrderLine.order_id == Order.id``): a path
   of them to a table the keys come from, walked as a correlated SELECT (changing an
   order changes the keys of its lines' products).

A table that none of these reach is refused at declaration time: its rows would change the
read model in ways no key can name. What step 4 cannot see is a table the source reads
other than through equalities (an uncorrelated subquery, a range condition): declare it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, ColumnElement, Select, Table, select
from sqlalchemy.sql import operators, visitors
from sqlalchemy.sql.elements import BinaryExpression, Label
from sqlalchemy.sql.selectable import Alias

#: replacement_traverse's options: none.
NO_OPTIONS: dict[str, Any] = {}


@dataclass(frozen=True)
class KeyMapping:
    """How a changed row of ``table`` names the refresh keys it affects."""

    table: Table
    #: Expressions over the row's columns, one per refresh-key column.
    expressions: tuple[ColumnElement[Any], ...] | None = None
    #: A SELECT correlated to the row's columns, returning the refresh keys.
    select: Select[Any] | None = None

    @property
    def columns(self) -> frozenset[str]:
        """The columns of ``table`` it reads (a change of one may change the keys)."""
        found = _columns_by_table(self.expressions or self.select)
        return frozenset(found.get(self.table.name, ()))


@dataclass(frozen=True)
class Lineage:
    tables: dict[str, Table]
    #: Per table: the columns the source (or a key mapping) reads.
    columns: dict[str, frozenset[str]]
    mappings: dict[str, tuple[KeyMapping, ...]] = field(default_factory=dict)


class LineageError(ValueError):
    """A read model whose lineage cannot be worked out from its declaration."""


def lineage(
    name: str,
    source: Select[Any],
    refresh_by: Sequence[str],
    declared: Mapping[Any, Any],
) -> Lineage:
    tables = _tables_read(source)
    columns = {table: set(cols) for table, cols in _columns_by_table(source).items()}
    mappings: dict[str, tuple[KeyMapping, ...]] = {}
    for key, value in declared.items():
        table = _table_of(key)
        if table.name not in tables:
            raise LineageError(
                f"read model {name!r}: keys_from names {table.name!r}, which its source "
                "does not read"
            )
        mappings[table.name] = tuple(_declared(name, table, value, len(refresh_by)))
    key_expressions = _key_expressions(name, source, refresh_by)
    for table_name, table in tables.items():
        if table_name in mappings:
            continue
        derived = _direct(table, key_expressions) or _same_named(table, refresh_by)
        if derived is not None:
            mappings[table_name] = (derived,)
    _through_equalities(name, source, tables, mappings)
    for table_name, found in mappings.items():
        for mapping in found:
            columns.setdefault(table_name, set()).update(mapping.columns)
    return Lineage(
        tables=tables,
        columns={table: frozenset(cols) for table, cols in columns.items()},
        mappings=mappings,
    )


# ---------------------------------------------------------------- what the source reads


def base_table(selectable: Any) -> Table | None:
    """The table behind ``selectable`` (through aliases), or None."""
    while isinstance(selectable, Alias):
        selectable = selectable.element
    if not isinstance(selectable, Table):
        return None
    # ORM-annotated copies (from mapped classes) stand for the table itself.
    table: Table = selectable._deannotate()
    return table


def _tables_read(source: Select[Any]) -> dict[str, Table]:
    found: dict[str, Table] = {}
    for element in visitors.iterate(source):
        table = base_table(element) if isinstance(element, Table | Alias) else None
        if table is None and isinstance(element, Column):
            table = base_table(element.table)
        if table is not None:
            found.setdefault(table.name, table)
    return found


def _columns_by_table(clause: Any) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    elements = clause if isinstance(clause, tuple) else (clause,)
    for element in elements:
        for node in visitors.iterate(element):
            if isinstance(node, Column):
                table = base_table(node.table)
                if table is not None:
                    found.setdefault(table.name, set()).add(node.name)
    return found


def _table_of(key: Any) -> Table:
    if isinstance(key, Table):
        return key
    table = getattr(key, "__table__", None)  # a mapped class
    if isinstance(table, Table):
        return table
    raise LineageError(f"keys_from: {key!r} is not a table or a mapped class")


# ---------------------------------------------------------------- the key mappings


def _declared(name: str, table: Table, value: Any, width: int) -> list[KeyMapping]:
    values = value if isinstance(value, list) else [value]
    mappings = []
    for item in values:
        if isinstance(item, Select):
            if len(item.selected_columns) != width:
                raise LineageError(
                    f"read model {name!r}: the keys_from SELECT for {table.name!r} returns "
                    f"{len(item.selected_columns)} columns; the refresh key has {width}"
                )
            mappings.append(KeyMapping(table, select=item))
            continue
        expressions = item if isinstance(item, tuple) else (item,)
        if len(expressions) != width or not all(isinstance(e, ColumnElement) for e in expressions):
            raise LineageError(
                f"read model {name!r}: keys_from[{table.name!r}] must give {width} column "
                "expression(s) of that table, or a SELECT"
            )
        mappings.append(KeyMapping(table, expressions=tuple(expressions)))
    return mappings


def _key_expressions(
    name: str, source: Select[Any], refresh_by: Sequence[str]
) -> tuple[ColumnElement[Any], ...]:
    selected = source.selected_columns
    missing = [key for key in refresh_by if key not in selected]
    if missing:
        raise LineageError(f"read model {name!r}: its source does not select {missing}")
    expressions = []
    for key in refresh_by:
        column = selected[key]
        expressions.append(column.element if isinstance(column, Label) else column)
    return tuple(expressions)


def _direct(table: Table, key_expressions: tuple[ColumnElement[Any], ...]) -> KeyMapping | None:
    """The keys computed from this table's columns alone, if the source does so."""
    for expression in key_expressions:
        read = _columns_by_table(expression)
        if set(read) != {table.name}:
            return None
    return KeyMapping(table, expressions=tuple(_rebound(e, table) for e in key_expressions))


def _same_named(table: Table, refresh_by: Sequence[str]) -> KeyMapping | None:
    if all(key in table.c for key in refresh_by):
        return KeyMapping(table, expressions=tuple(table.c[key] for key in refresh_by))
    return None


def _rebound(expression: ColumnElement[Any], table: Table) -> ColumnElement[Any]:
    """``expression`` over ``table`` itself rather than an alias of it."""

    def replace(element: Any, **_kw: Any) -> Any:
        if isinstance(element, Column) and base_table(element.table) is table:
            return table.c[element.name]
        return None

    return visitors.replacement_traverse(expression, NO_OPTIONS, replace)


# ---------------------------------------------------------------- through the conditions


Edge = tuple[Column[Any], Column[Any]]  # (a column of this table, the column it equals)


def _equalities(source: Select[Any]) -> dict[str, list[Edge]]:
    """Per table, the ``this.column == other.column`` conditions of the source."""
    edges: dict[str, list[Edge]] = {}
    for node in visitors.iterate(source):
        if not (isinstance(node, BinaryExpression) and node.operator is operators.eq):
            continue
        left, right = node.left, node.right
        if not (isinstance(left, Column) and isinstance(right, Column)):
            continue
        left_table, right_table = base_table(left.table), base_table(right.table)
        if left_table is None or right_table is None or left_table is right_table:
            continue
        edges.setdefault(left_table.name, []).append(
            (left_table.c[left.name], right_table.c[right.name])
        )
        edges.setdefault(right_table.name, []).append(
            (right_table.c[right.name], left_table.c[left.name])
        )
    return edges


def _through_equalities(
    name: str,
    source: Select[Any],
    tables: dict[str, Table],
    mappings: dict[str, tuple[KeyMapping, ...]],
) -> None:
    """Map the remaining tables, nearest first, through a table already mapped."""
    edges = _equalities(source)
    queue = deque(mappings)
    while queue:
        mapped = queue.popleft()
        for table_name in sorted(tables):
            if table_name in mappings:
                continue
            links = list(
                dict.fromkeys(  # the same condition may appear in several subqueries
                    (own, other)
                    for own, other in edges.get(table_name, ())
                    if base_table(other.table) is tables[mapped]
                )
            )
            if not links:
                continue
            mappings[table_name] = tuple(
                _joined(tables[table_name], own, other, via)
                for own, other in links
                for via in mappings[mapped]
            )
            queue.append(table_name)
    unmapped = sorted(set(tables) - set(mappings))
    if unmapped:
        raise LineageError(
            f"read model {name!r}: cannot tell which of its rows a change to "
            f"{', '.join(unmapped)} affects (no key column, no equality condition linking "
            "it to one); declare keys_from={table: <its key expression or a SELECT>}"
        )


def _joined(table: Table, own: Column[Any], other: Column[Any], via: KeyMapping) -> KeyMapping:
    """``table``'s mapping: the keys of the ``via`` rows whose ``other`` equals ``own``."""
    if via.expressions is not None:
        if len(via.expressions) == 1 and _same_column(via.expressions[0], other):
            return KeyMapping(table, expressions=(own,))  # the key is the column itself
        keys = select(*via.expressions).where(other == own)
    else:
        assert via.select is not None
        keys = _correlated(via.select, via.table, other, own)
    return KeyMapping(table, select=keys)


def _correlated(
    keys: Select[Any], table: Table, other: Column[Any], own: Column[Any]
) -> Select[Any]:
    """``keys`` (correlated to ``table``'s row) for every ``table`` row whose ``other``
    equals ``own``: ``table`` joins the FROM list instead of being correlated."""
    return keys.where(other == own).select_from(table)


def _same_column(expression: ColumnElement[Any], column: Column[Any]) -> bool:
    return (
        isinstance(expression, Column)
        and expression.table is column.table
        and (expression.name == column.name)
    )


def describe(mapping: KeyMapping) -> str:
    """A one-line description of a mapping, for ``flask cqrs status``."""
    if mapping.expressions is not None:
        return ", ".join(str(e) for e in mapping.expressions)
    assert mapping.select is not None
    return " ".join(str(mapping.select).split())


def all_columns(mappings: Iterable[KeyMapping]) -> frozenset[str]:
    return frozenset().union(*(m.columns for m in mappings))
