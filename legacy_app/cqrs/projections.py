"""The shop's hand-written projections: placing an order, its hot path, and nothing else.

Every shop read model is kept exact by change capture and refresh-by-key (the toolkit
recomputes the rows whose inputs a transaction changed, from the model's ``source()``,
before it commits). That costs a recompute per touched row, which is cheap for a product
renamed or an order paid, and measurably slower for the write every customer makes: an
order touches the catalog, the customer's history, summary and units, the product's
sales and the day's sales at once. So ``OrderPlaced`` keeps its projections; the toolkit
then forgets what the capture recorded for their read models in that transaction (their
contract: the event says all the command changed in their sources). Every other write,
whichever way it comes, is refreshed by key. ``make bench`` measures both ways
(``write:orders.place_order`` and ``write:orders.place_order-refresh``).

Counters move by set-based increments in the database (``x = x + delta`` or
``INSERT ... ON CONFLICT DO UPDATE``), never read into Python and written back, so two
commands committing concurrently both count. Values an event states outright (a stock
level after the change) are written as given. The statements are built once, with
``bindparam()``s or ``excluded`` values, and run one statement per table per event, its
lines as an executemany: building a SQLAlchemy construct and its cache key costs more
than running it. The ``INSERT ... ON CONFLICT`` ones depend on the dialect and are built
on first use per dialect (``functools.cache``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Date,
    Executable,
    Integer,
    bindparam,
    case,
    func,
    select,
    update,
)

from cqrs_layer import Projection, ProjectionContext
from cqrs_layer.sql import dialect_insert_for

from .events import OrderLineSnapshot, OrderPlaced
from .read_models import (
    catalog,
    catalog_view,
    categories_view,
    customer_category_units,
    customer_category_units_view,
    customer_orders,
    customer_orders_view,
    customer_product_units,
    customer_product_units_view,
    customer_summary,
    customer_summary_view,
    daily_sales,
    daily_sales_view,
    product_daily_sales,
    product_daily_sales_view,
    product_sales,
    product_sales_view,
)


def naive_utc(value: datetime) -> datetime:
    """How the read tables store time: naive UTC (an event's naive value is taken as UTC)."""
    return value if value.tzinfo is None else value.astimezone(UTC).replace(tzinfo=None)


def utc_day_of(value: datetime) -> date:
    return naive_utc(value).date()


def _units(lines: list[OrderLineSnapshot]) -> int:
    return sum(line.quantity for line in lines)


def _revenue(lines: list[OrderLineSnapshot]) -> int:
    return sum(line.quantity * line.unit_price_cents for line in lines)


def _by_product(lines: list[OrderLineSnapshot]) -> list[OrderLineSnapshot]:
    """In product id order, so two orders over the same products lock rows alike."""
    return sorted(lines, key=lambda line: line.product_id)


def _execute_many(connection: Connection, statement: Executable, rows: Sequence[Any]) -> None:
    # An empty parameter list would run the statement once with no parameters.
    if rows:
        connection.execute(statement, list(rows))


# Parameters of the prebuilt statements. The "b_" prefix keeps them apart from column
# names, which SQLAlchemy reserves for the VALUES / SET clauses it renders itself.
_P_CUSTOMER = bindparam("b_customer_id", type_=Integer())
_P_PRODUCT = bindparam("b_product_id", type_=Integer())
_P_DAY = bindparam("b_day", type_=Date())
_P_UNITS = bindparam("b_units", type_=BigInteger())
_P_REVENUE = bindparam("b_revenue", type_=BigInteger())
_P_STOCK = bindparam("b_stock", type_=Integer())


# -- catalog -------------------------------------------------------------------------------

# Every projection here only writes (no handler reads a rowcount), so each lets its
# statements go to the database in one round trip (PostgreSQL pipeline mode).
catalog_projection = Projection("catalog", read_models=[catalog], batch_round_trips=True)
_cat = catalog_view.c


_CATALOG_SOLD = (
    update(catalog_view)
    .where(_cat.product_id == _P_PRODUCT)
    .values(units_sold=_cat.units_sold + _P_UNITS, stock=_P_STOCK)
)


@catalog_projection.on(OrderPlaced)
def _catalog_order_placed(event: OrderPlaced, ctx: ProjectionContext) -> None:
    _execute_many(
        ctx.connection,
        _CATALOG_SOLD,
        [
            {
                "b_product_id": line.product_id,
                "b_units": line.quantity,
                "b_stock": line.stock_after,
            }
            for line in _by_product(event.lines)
        ],
    )


# -- customers: order history, summary, favourite category ---------------------------------
# One projection for all of them: the summary's first/last order after a cancellation is
# recomputed from customer_orders_view, so the two must advance together (and share one
# checkpoint once projections run asynchronously).

customers_projection = Projection(
    "customers",
    read_models=[
        customer_orders,
        customer_summary,
        customer_product_units,
        customer_category_units,
    ],
    batch_round_trips=True,
)
_orders = customer_orders_view.c
_summary = customer_summary_view.c
_cpu = customer_product_units_view.c
_ccu = customer_category_units_view.c


@functools.cache
def _customer_order_upsert(dialect: str) -> Executable:
    statement = dialect_insert_for(dialect, customer_orders_view)
    return statement.on_conflict_do_update(
        index_elements=[_orders.order_id],
        set_={
            column.name: statement.excluded[column.name]
            for column in customer_orders_view.columns
            if not column.primary_key
        },
    )


@functools.cache
def _summary_order_added(dialect: str) -> Executable:
    """Insert the summary row with one order, or count the order into the existing row."""
    statement = dialect_insert_for(dialect, customer_summary_view)
    new = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=[_summary.customer_id],
        set_={
            "order_count": _summary.order_count + new.order_count,
            "lifetime_value_cents": _summary.lifetime_value_cents + new.lifetime_value_cents,
            "first_order_at": case(
                (_summary.first_order_at.is_(None), new.first_order_at),
                (_summary.first_order_at > new.first_order_at, new.first_order_at),
                else_=_summary.first_order_at,
            ),
            "last_order_at": case(
                (_summary.last_order_at.is_(None), new.last_order_at),
                (_summary.last_order_at < new.last_order_at, new.last_order_at),
                else_=_summary.last_order_at,
            ),
        },
    )


@functools.cache
def _customer_product_units_added(dialect: str) -> Executable:
    statement = dialect_insert_for(dialect, customer_product_units_view)
    return statement.on_conflict_do_update(
        index_elements=[_cpu.customer_id, _cpu.product_id],
        set_={"units": _cpu.units + statement.excluded.units},
    )


@functools.cache
def _customer_category_units_added(dialect: str) -> Executable:
    """Add a line's units to the category its product is filed under for the customer.

    A product's category is the one already filed for this customer if any (category
    moves re-file every row), so the category units always add up to the product units.
    """
    filed = (
        select(_cpu.customer_id, _cpu.category_id, categories_view.c.name, _P_UNITS.label("units"))
        .join(categories_view, categories_view.c.category_id == _cpu.category_id)
        .where(_cpu.customer_id == _P_CUSTOMER, _cpu.product_id == _P_PRODUCT)
    )
    statement = dialect_insert_for(dialect, customer_category_units_view).from_select(
        ["customer_id", "category_id", "category_name", "units"], filed
    )
    return statement.on_conflict_do_update(
        index_elements=[_ccu.customer_id, _ccu.category_id],
        set_={"units": _ccu.units + statement.excluded.units},
    )


@customers_projection.on(OrderPlaced)
def _customers_order_placed(event: OrderPlaced, ctx: ProjectionContext) -> None:
    connection = ctx.connection
    dialect = connection.dialect.name
    customer_id = event.customer_id
    created_at = naive_utc(event.created_at)
    total = _revenue(event.lines)
    connection.execute(
        _customer_order_upsert(dialect),
        {
            "order_id": event.order_id,
            "customer_id": customer_id,
            "status": "placed",
            "created_at": created_at,
            "line_count": len(event.lines),
            "item_count": _units(event.lines),
            "total_cents": total,
        },
    )
    connection.execute(
        _summary_order_added(dialect),
        {
            "customer_id": customer_id,
            "order_count": 1,
            "lifetime_value_cents": total,
            "first_order_at": created_at,
            "last_order_at": created_at,
        },
    )
    lines = _by_product(event.lines)
    # Every product row first, then the category rows: each category row is computed from
    # its own line's product row, which no other line of the order touches.
    _execute_many(
        connection,
        _customer_product_units_added(dialect),
        [
            {
                "customer_id": customer_id,
                "product_id": line.product_id,
                "category_id": line.category_id,
                "units": line.quantity,
            }
            for line in lines
        ],
    )
    _execute_many(
        connection,
        _customer_category_units_added(dialect),
        [
            {
                "b_customer_id": customer_id,
                "b_product_id": line.product_id,
                "b_units": line.quantity,
            }
            for line in lines
        ],
    )


# -- product sales (top products) ----------------------------------------------------------

product_sales_projection = Projection(
    "product_sales", read_models=[product_sales, product_daily_sales], batch_round_trips=True
)
_ps = product_sales_view.c
_pds = product_daily_sales_view.c


# The product's totals row first: it serializes every change to this product's daily rows,
# so the running totals below are computed from committed neighbours.
_PRODUCT_TOTALS_ADDED = (
    update(product_sales_view)
    .where(_ps.product_id == _P_PRODUCT)
    .values(units_sold=_ps.units_sold + _P_UNITS, revenue_cents=_ps.revenue_cents + _P_REVENUE)
)
# Later days' running totals include this day.
_LATER_RUNNING_TOTALS_ADDED = (
    update(product_daily_sales_view)
    .where(_pds.product_id == _P_PRODUCT, _pds.day > _P_DAY)
    .values(
        cumulative_units=_pds.cumulative_units + _P_UNITS,
        cumulative_revenue_cents=_pds.cumulative_revenue_cents + _P_REVENUE,
    )
)


def _running_total_before(column: Any) -> Any:
    latest = (
        select(column)
        .where(_pds.product_id == _P_PRODUCT, _pds.day < _P_DAY)
        .order_by(_pds.day.desc())
        .limit(1)
        .scalar_subquery()
    )
    return func.coalesce(latest, 0)


@functools.cache
def _product_day_added(dialect: str) -> Executable:
    """The day's row: created with the running totals of the day before plus this sale,
    or this sale added to its figures and running totals."""
    statement = dialect_insert_for(dialect, product_daily_sales_view).values(
        product_id=_P_PRODUCT,
        day=_P_DAY,
        units=_P_UNITS,
        revenue_cents=_P_REVENUE,
        cumulative_units=_running_total_before(_pds.cumulative_units) + _P_UNITS,
        cumulative_revenue_cents=_running_total_before(_pds.cumulative_revenue_cents) + _P_REVENUE,
    )
    return statement.on_conflict_do_update(
        index_elements=[_pds.product_id, _pds.day],
        set_={
            "units": _pds.units + _P_UNITS,
            "revenue_cents": _pds.revenue_cents + _P_REVENUE,
            "cumulative_units": _pds.cumulative_units + _P_UNITS,
            "cumulative_revenue_cents": _pds.cumulative_revenue_cents + _P_REVENUE,
        },
    )


def _record_product_sales(
    connection: Connection, day: date, lines: list[OrderLineSnapshot]
) -> None:
    """Each statement runs for every line (an executemany) before the next: the lines are
    of different products, so each line's statements touch rows no other line touches and
    run in the same order as they would line by line."""
    rows = [
        {
            "b_product_id": line.product_id,
            "b_day": day,
            "b_units": line.quantity,
            "b_revenue": line.quantity * line.unit_price_cents,
        }
        for line in _by_product(lines)
    ]
    _execute_many(connection, _PRODUCT_TOTALS_ADDED, rows)
    _execute_many(connection, _LATER_RUNNING_TOTALS_ADDED, rows)
    _execute_many(connection, _product_day_added(connection.dialect.name), rows)


@product_sales_projection.on(OrderPlaced)
def _sales_order_placed(event: OrderPlaced, ctx: ProjectionContext) -> None:
    _record_product_sales(ctx.connection, utc_day_of(event.created_at), event.lines)


# -- daily sales ---------------------------------------------------------------------------

daily_sales_projection = Projection(
    "daily_sales", read_models=[daily_sales], batch_round_trips=True
)
_daily = daily_sales_view.c


@functools.cache
def _day_added(dialect: str) -> Executable:
    statement = dialect_insert_for(dialect, daily_sales_view)
    new = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=[_daily.day],
        set_={
            "order_count": _daily.order_count + new.order_count,
            "units": _daily.units + new.units,
            "revenue_cents": _daily.revenue_cents + new.revenue_cents,
        },
    )


@daily_sales_projection.on(OrderPlaced)
def _daily_order_placed(event: OrderPlaced, ctx: ProjectionContext) -> None:
    ctx.connection.execute(
        _day_added(ctx.connection.dialect.name),
        {
            "day": utc_day_of(event.created_at),
            "order_count": 1,
            "units": _units(event.lines),
            "revenue_cents": _revenue(event.lines),
        },
    )


PROJECTIONS: tuple[Projection, ...] = (
    catalog_projection,
    customers_projection,
    product_sales_projection,
    daily_sales_projection,
)
