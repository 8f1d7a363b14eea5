"""Refreshing by key without computing every group: the key filter pushed into the
source's aggregate subqueries.

A keyed refresh runs ``source()`` restricted to one key. A source that LEFT JOINs a
``GROUP BY`` subquery on the key (``LEFT JOIN (SELECT product_id, sum(quantity) ... GROUP
BY product_id) AS sold ON sold.product_id = products.id``) leaves the restriction to the
planner. PostgreSQL carries the equality into the subquery; SQLite cannot push a filter
into the right side of a LEFT JOIN, so it aggregates every order line for each key (350 ms
per product at 20,000 orders, against a few ms pushed down).

So the toolkit does it: each subquery joined by an equality to the expression a key column
is selected as gets that key in its own WHERE, on the column it exposes. Rows of the
subquery with another key could only ever join other keys' rows, so the answer for this
key is the same. Subqueries nested inside one (a GROUP BY over a GROUP BY) are reached the
same way, through the outer subquery's own joins and FROM.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, cast

from sqlalchemy import BindParameter, ColumnElement, Select
from sqlalchemy.sql import operators, visitors
from sqlalchemy.sql.elements import BinaryExpression, Label
from sqlalchemy.sql.selectable import Join, Subquery


def pushed_down(source: Select[Any], params: Mapping[str, BindParameter[Any]]) -> Select[Any]:
    """``source`` with each key's ``params[column]`` pushed into the aggregate subqueries
    joined on that key's expression (``source`` itself is left as it is)."""
    keyed = {name: _expression(source, name) for name in params}
    replacements: dict[int, tuple[Subquery, Subquery]] = {}
    for subquery, column, key_expression in _joined_on_keys(source, keyed):
        name = next(name for name, expr in keyed.items() if key_expression.shares_lineage(expr))
        if id(subquery) not in replacements:
            restricted = _restricted(subquery, column, params[name])
            replacements[id(subquery)] = (subquery, restricted)
    if not replacements:
        return source
    return _replaced(source, replacements)


def _expression(source: Select[Any], name: str) -> ColumnElement[Any]:
    column = source.selected_columns[name]
    return column.element if isinstance(column, Label) else column


def _joined_on_keys(
    source: Select[Any], keyed: Mapping[str, ColumnElement[Any]]
) -> Iterator[tuple[Subquery[Any], str, ColumnElement[Any]]]:
    """(subquery, its column's name, the key expression it equals) for each equality of a
    join's ON clause between a subquery column and a key expression."""
    for join in _joins(source):
        for binary in visitors.iterate(join.onclause):
            if not isinstance(binary, BinaryExpression) or binary.operator is not operators.eq:
                continue
            for side, other in ((binary.left, binary.right), (binary.right, binary.left)):
                table = getattr(side, "table", None)
                if not isinstance(table, Subquery) or not isinstance(table.element, Select):
                    continue
                if side.key and any(other.shares_lineage(expr) for expr in keyed.values()):
                    yield table, str(side.key), other


def _joins(source: Select[Any]) -> Iterator[Join]:
    for from_ in source.get_final_froms():
        yield from _walk_join(from_)


def _walk_join(from_: Any) -> Iterator[Join]:
    if isinstance(from_, Join):
        yield from_
        yield from _walk_join(from_.left)
        yield from _walk_join(from_.right)


def _restricted(subquery: Subquery, column: str, param: BindParameter[Any]) -> Subquery:
    """``subquery`` with ``column = param`` in its WHERE, pushed further down the same way
    (into the subqueries it joins on that column, or selects it from)."""
    inner: Select[Any] = subquery.element  # type: ignore[assignment]
    expression = _expression(inner, column)
    restricted = pushed_down(inner.where(expression == param), {column: param})
    below = getattr(expression, "table", None)
    if isinstance(below, Subquery) and isinstance(below.element, Select):
        # Selected straight from another subquery (a GROUP BY over a GROUP BY): that one
        # gets the key too, on the column this one takes it from.
        deeper = _restricted(below, str(getattr(expression, "key", column)), param)
        restricted = _replaced(restricted, {id(below): (below, deeper)})
    return restricted.subquery(subquery.name)


def _replaced(
    source: Select[Any], replacements: Mapping[int, tuple[Subquery, Subquery]]
) -> Select[Any]:
    def replace(element: Any) -> Any:
        found = replacements.get(id(element))
        if found is not None:
            return found[1]
        table = getattr(element, "table", None)
        found = replacements.get(id(table)) if table is not None else None
        if found is not None and hasattr(element, "key"):
            return found[1].c[element.key]
        return None

    replaced: Any = visitors.replacement_traverse(source, {}, replace)  # type: ignore[call-overload]
    return cast(Select[Any], replaced)
