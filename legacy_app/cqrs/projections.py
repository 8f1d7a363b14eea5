"""Projections: keep each read model equal to its ``source()`` as events arrive.

Counters move by set-based increments in the database (``x = x + delta`` or
``INSERT ... ON CONFLICT DO UPDATE``), never read into Python and written back, so two
commands committing concurrently both count. Values an event states outright (a stock
level after the change, a product's new name) are written as given.

Rows whose figures fall back to nothing (a customer's units in a category after a
cancellation, a day without orders) are deleted, because the source SELECTs are GROUP BYs
that have no such rows; that is what keeps ``verify`` clean.

The order events (the hot path: every order placed runs these inside its command) use
statements built once, with ``bindparam()``s or ``excluded`` values, and run one
statement per table per event, its lines as an executemany: building a SQLAlchemy
construct and its cache key costs more than running it. The ``INSERT ... ON CONFLICT``
ones depend on the dialect and are built on first use per dialect (``functools.cache``).
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
    String,
    and_,
    bindparam,
    case,
    delete,
    func,
    select,
    update,
)

from cqrs_layer import Projection, ProjectionContext
from cqrs_layer.sql import dialect_insert, dialect_insert_for, upsert

from .events import (
    CategoryCreated,
    CustomerDeleted,
    CustomerRegistered,
    OrderCancelled,
    OrderLineSnapshot,
    OrderPaid,
    OrderPlaced,
    OrderShipped,
    ProductCreated,
    ProductDeleted,
    ProductRestocked,
    ProductUpdated,
    ReviewAdded,
)
from .read_models import (
    CANCELLED,
    UNRATED_SORT_KEY,
    catalog,
    catalog_view,
    categories,
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
    rating_average,
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
_P_ORDER = bindparam("b_order_id", type_=Integer())
_P_PRODUCT = bindparam("b_product_id", type_=Integer())
_P_DAY = bindparam("b_day", type_=Date())
_P_UNITS = bindparam("b_units", type_=BigInteger())
_P_REVENUE = bindparam("b_revenue", type_=BigInteger())
_P_STOCK = bindparam("b_stock", type_=Integer())
_P_STATUS = bindparam("b_status", type_=String())


# -- catalog -------------------------------------------------------------------------------

# Every projection here only writes (no handler reads a rowcount), so each lets its
# statements go to the database in one round trip (PostgreSQL pipeline mode).
catalog_projection = Projection("catalog", read_models=[catalog], batch_round_trips=True)
_cat = catalog_view.c


@catalog_projection.on(ProductCreated)
def _catalog_product_created(event: ProductCreated, ctx: ProjectionContext) -> None:
    upsert(
        ctx.connection,
        catalog_view,
        {
            "product_id": event.product_id,
            "sku": event.sku,
            "name": event.name,
            "description": event.description,
            "price_cents": event.price_cents,
            "category_id": event.category_id,
            "category_name": event.category_name,
            "stock": event.stock,
            "rating_sum": 0,
            "rating_count": 0,
            "rating_sort_key": UNRATED_SORT_KEY,
            "units_sold": 0,
            "created_at": naive_utc(event.created_at),
            "updated_at": naive_utc(event.updated_at),
        },
    )


@catalog_projection.on(ProductUpdated)
def _catalog_product_updated(event: ProductUpdated, ctx: ProjectionContext) -> None:
    ctx.connection.execute(
        update(catalog_view)
        .where(_cat.product_id == event.product_id)
        .values(
            sku=event.sku,
            name=event.name,
            description=event.description,
            price_cents=event.price_cents,
            category_id=event.category_id,
            category_name=event.category_name,
            updated_at=naive_utc(event.updated_at),
        )
    )


@catalog_projection.on(ProductDeleted)
def _catalog_product_deleted(event: ProductDeleted, ctx: ProjectionContext) -> None:
    ctx.connection.execute(delete(catalog_view).where(_cat.product_id == event.product_id))


@catalog_projection.on(ProductRestocked)
def _catalog_restocked(event: ProductRestocked, ctx: ProjectionContext) -> None:
    ctx.connection.execute(
        update(catalog_view)
        .where(_cat.product_id == event.product_id)
        .values(stock=event.stock, updated_at=naive_utc(event.updated_at))
    )


@catalog_projection.on(ReviewAdded)
def _catalog_review_added(event: ReviewAdded, ctx: ProjectionContext) -> None:
    # In an UPDATE every right-hand side reads the row as it was, so the average is
    # computed from the new sum and count in the same statement.
    ctx.connection.execute(
        update(catalog_view)
        .where(_cat.product_id == event.product_id)
        .values(
            rating_sum=_cat.rating_sum + event.rating,
            rating_count=_cat.rating_count + 1,
            rating_sort_key=rating_average(_cat.rating_sum + event.rating, _cat.rating_count + 1),
        )
    )


_CATALOG_SOLD = (
    update(catalog_view)
    .where(_cat.product_id == _P_PRODUCT)
    .values(units_sold=_cat.units_sold + _P_UNITS, stock=_P_STOCK)
)


def _catalog_sold(connection: Connection, lines: list[OrderLineSnapshot], sign: int) -> None:
    _execute_many(
        connection,
        _CATALOG_SOLD,
        [
            {
                "b_product_id": line.product_id,
                "b_units": sign * line.quantity,
                "b_stock": line.stock_after,
            }
            for line in _by_product(lines)
        ],
    )


@catalog_projection.on(OrderPlaced)
def _catalog_order_placed(event: OrderPlaced, ctx: ProjectionContext) -> None:
    _catalog_sold(ctx.connection, event.lines, +1)


@catalog_projection.on(OrderCancelled)
def _catalog_order_cancelled(event: OrderCancelled, ctx: ProjectionContext) -> None:
    _catalog_sold(ctx.connection, event.lines, -1)


# -- customers: order history, summary, favourite category ---------------------------------
# One projection for all of them: the summary's first/last order after a cancellation is
# recomputed from customer_orders_view, so the two must advance together (and share one
# checkpoint once projections run asynchronously).

customers_projection = Projection(
    "customers",
    read_models=[
        customer_orders,
        customer_summary,
        categories,
        customer_product_units,
        customer_category_units,
    ],
    batch_round_trips=True,
)
_orders = customer_orders_view.c
_summary = customer_summary_view.c
_cpu = customer_product_units_view.c
_ccu = customer_category_units_view.c


@customers_projection.on(CategoryCreated)
def _category_created(event: CategoryCreated, ctx: ProjectionContext) -> None:
    upsert(ctx.connection, categories_view, {"category_id": event.category_id, "name": event.name})


@customers_projection.on(CustomerRegistered)
def _customer_registered(event: CustomerRegistered, ctx: ProjectionContext) -> None:
    statement = dialect_insert(ctx.connection, customer_summary_view).values(
        customer_id=event.customer_id,
        order_count=0,
        lifetime_value_cents=0,
        first_order_at=None,
        last_order_at=None,
    )
    ctx.connection.execute(statement.on_conflict_do_nothing(index_elements=["customer_id"]))


@customers_projection.on(CustomerDeleted)
def _customer_deleted(event: CustomerDeleted, ctx: ProjectionContext) -> None:
    # Only customers without orders can be deleted, so the summary row is all there is.
    ctx.connection.execute(
        delete(customer_summary_view).where(_summary.customer_id == event.customer_id)
    )


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


_SET_STATUS = (
    update(customer_orders_view).where(_orders.order_id == _P_ORDER).values(status=_P_STATUS)
)


def _set_status(connection: Connection, order_id: int, status: str) -> None:
    connection.execute(_SET_STATUS, {"b_order_id": order_id, "b_status": status})


@customers_projection.on(OrderPaid)
def _customers_order_paid(event: OrderPaid, ctx: ProjectionContext) -> None:
    _set_status(ctx.connection, event.order_id, "paid")


@customers_projection.on(OrderShipped)
def _customers_order_shipped(event: OrderShipped, ctx: ProjectionContext) -> None:
    _set_status(ctx.connection, event.order_id, "shipped")


_mine = _summary.customer_id == _P_CUSTOMER
_SUMMARY_ORDER_TAKEN_BACK = (
    update(customer_summary_view)
    .where(_mine)
    .values(
        order_count=_summary.order_count - 1,
        lifetime_value_cents=_summary.lifetime_value_cents - _P_REVENUE,
    )
)
_counted = and_(_orders.customer_id == _P_CUSTOMER, _orders.status != CANCELLED)
_SUMMARY_FIRST_LAST_RECOMPUTED = (
    update(customer_summary_view)
    .where(_mine)
    .values(
        first_order_at=select(func.min(_orders.created_at)).where(_counted).scalar_subquery(),
        last_order_at=select(func.max(_orders.created_at)).where(_counted).scalar_subquery(),
    )
)
_filed_under = (
    select(_cpu.category_id)
    .where(_cpu.customer_id == _P_CUSTOMER, _cpu.product_id == _P_PRODUCT)
    .scalar_subquery()
)
_CATEGORY_UNITS_TAKEN_BACK = (
    update(customer_category_units_view)
    .where(_ccu.customer_id == _P_CUSTOMER, _ccu.category_id == _filed_under)
    .values(units=_ccu.units - _P_UNITS)
)
_PRODUCT_UNITS_TAKEN_BACK = (
    update(customer_product_units_view)
    .where(_cpu.customer_id == _P_CUSTOMER, _cpu.product_id == _P_PRODUCT)
    .values(units=_cpu.units - _P_UNITS)
)
_EMPTY_UNITS_DELETED = tuple(
    delete(table).where(units.customer_id == _P_CUSTOMER, units.units <= 0)
    for table, units in ((customer_category_units_view, _ccu), (customer_product_units_view, _cpu))
)


@customers_projection.on(OrderCancelled)
def _customers_order_cancelled(event: OrderCancelled, ctx: ProjectionContext) -> None:
    connection = ctx.connection
    customer_id = event.customer_id
    _set_status(connection, event.order_id, CANCELLED)
    # The counters first: this UPDATE locks the summary row, so on PostgreSQL the
    # recompute below starts after any concurrent order of this customer committed and
    # sees it (READ COMMITTED takes a fresh snapshot per statement).
    connection.execute(
        _SUMMARY_ORDER_TAKEN_BACK,
        {"b_customer_id": customer_id, "b_revenue": _revenue(event.lines)},
    )
    connection.execute(_SUMMARY_FIRST_LAST_RECOMPUTED, {"b_customer_id": customer_id})
    lines = [
        {"b_customer_id": customer_id, "b_product_id": line.product_id, "b_units": line.quantity}
        for line in _by_product(event.lines)
    ]
    # Category units first, while the product rows still say where they are filed.
    _execute_many(connection, _CATEGORY_UNITS_TAKEN_BACK, lines)
    _execute_many(connection, _PRODUCT_UNITS_TAKEN_BACK, lines)
    for statement in _EMPTY_UNITS_DELETED:
        connection.execute(statement, {"b_customer_id": customer_id})


@customers_projection.on(ProductUpdated)
def _customers_product_updated(event: ProductUpdated, ctx: ProjectionContext) -> None:
    """A product moved category: re-file its units and recompute its buyers' categories.

    Set-based over the read tables: one UPDATE re-files the product's per-customer units,
    then each affected customer's category units are rebuilt from their product units
    (a DELETE and an INSERT ... SELECT ... GROUP BY). The legacy tables are not read, so
    this still works once the read models live in another database.
    """
    if event.previous_category_id == event.category_id:
        return  # decided from the event, not a rowcount: the statements may be batched
    connection = ctx.connection
    connection.execute(
        update(customer_product_units_view)
        .where(
            _cpu.product_id == event.product_id,
            _cpu.category_id != event.category_id,
        )
        .values(category_id=event.category_id)
    )
    buyers = select(_cpu.customer_id).where(_cpu.product_id == event.product_id)
    connection.execute(delete(customer_category_units_view).where(_ccu.customer_id.in_(buyers)))
    rebuilt = (
        select(
            _cpu.customer_id,
            _cpu.category_id,
            categories_view.c.name,
            func.sum(_cpu.units),
        )
        .join(categories_view, categories_view.c.category_id == _cpu.category_id)
        .where(_cpu.customer_id.in_(buyers))
        .group_by(_cpu.customer_id, _cpu.category_id, categories_view.c.name)
    )
    connection.execute(
        customer_category_units_view.insert().from_select(
            ["customer_id", "category_id", "category_name", "units"], rebuilt
        )
    )


# -- product sales (top products) ----------------------------------------------------------

product_sales_projection = Projection(
    "product_sales", read_models=[product_sales, product_daily_sales], batch_round_trips=True
)
_ps = product_sales_view.c
_pds = product_daily_sales_view.c


@product_sales_projection.on(ProductCreated)
def _sales_product_created(event: ProductCreated, ctx: ProjectionContext) -> None:
    upsert(
        ctx.connection,
        product_sales_view,
        {
            "product_id": event.product_id,
            "sku": event.sku,
            "name": event.name,
            "units_sold": 0,
            "revenue_cents": 0,
        },
        update={"sku": event.sku, "name": event.name},
    )


@product_sales_projection.on(ProductUpdated)
def _sales_product_updated(event: ProductUpdated, ctx: ProjectionContext) -> None:
    ctx.connection.execute(
        update(product_sales_view)
        .where(_ps.product_id == event.product_id)
        .values(sku=event.sku, name=event.name)
    )


@product_sales_projection.on(ProductDeleted)
def _sales_product_deleted(event: ProductDeleted, ctx: ProjectionContext) -> None:
    # Products that were ever ordered cannot be deleted, so there are no daily rows.
    ctx.connection.execute(delete(product_sales_view).where(_ps.product_id == event.product_id))


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
# A day left without sales has no row in the source; the running totals of the days
# around it are unaffected (its own contribution is zero).
_EMPTY_DAY_DELETED = delete(product_daily_sales_view).where(
    _pds.product_id == _P_PRODUCT, _pds.day == _P_DAY, _pds.units <= 0
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
    connection: Connection, day: date, lines: list[OrderLineSnapshot], sign: int
) -> None:
    """Each statement runs for every line (an executemany) before the next: the lines are
    of different products, so each line's statements touch rows no other line touches and
    run in the same order as they would line by line."""
    rows = [
        {
            "b_product_id": line.product_id,
            "b_day": day,
            "b_units": sign * line.quantity,
            "b_revenue": sign * line.quantity * line.unit_price_cents,
        }
        for line in _by_product(lines)
    ]
    _execute_many(connection, _PRODUCT_TOTALS_ADDED, rows)
    _execute_many(connection, _LATER_RUNNING_TOTALS_ADDED, rows)
    _execute_many(connection, _product_day_added(connection.dialect.name), rows)
    if sign < 0:
        _execute_many(connection, _EMPTY_DAY_DELETED, rows)


@product_sales_projection.on(OrderPlaced)
def _sales_order_placed(event: OrderPlaced, ctx: ProjectionContext) -> None:
    _record_product_sales(ctx.connection, utc_day_of(event.created_at), event.lines, +1)


@product_sales_projection.on(OrderCancelled)
def _sales_order_cancelled(event: OrderCancelled, ctx: ProjectionContext) -> None:
    _record_product_sales(ctx.connection, utc_day_of(event.created_at), event.lines, -1)


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


_EMPTY_SALES_DAY_DELETED = delete(daily_sales_view).where(
    _daily.day == _P_DAY, _daily.order_count <= 0
)


def _record_daily_sale(
    connection: Connection, day: date, lines: list[OrderLineSnapshot], sign: int
) -> None:
    connection.execute(
        _day_added(connection.dialect.name),
        {
            "day": day,
            "order_count": sign,
            "units": sign * _units(lines),
            "revenue_cents": sign * _revenue(lines),
        },
    )
    if sign < 0:
        connection.execute(_EMPTY_SALES_DAY_DELETED, {"b_day": day})


@daily_sales_projection.on(OrderPlaced)
def _daily_order_placed(event: OrderPlaced, ctx: ProjectionContext) -> None:
    _record_daily_sale(ctx.connection, utc_day_of(event.created_at), event.lines, +1)


@daily_sales_projection.on(OrderCancelled)
def _daily_order_cancelled(event: OrderCancelled, ctx: ProjectionContext) -> None:
    _record_daily_sale(ctx.connection, utc_day_of(event.created_at), event.lines, -1)


PROJECTIONS: tuple[Projection, ...] = (
    catalog_projection,
    customers_projection,
    product_sales_projection,
    daily_sales_projection,
)
