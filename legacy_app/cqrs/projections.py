"""Projections: keep each read model equal to its ``source()`` as events arrive.

Counters move by set-based increments in the database (``x = x + delta`` or
``INSERT ... ON CONFLICT DO UPDATE``), never read into Python and written back, so two
commands committing concurrently both count. Values an event states outright (a stock
level after the change, a product's new name) are written as given.

Rows whose figures fall back to nothing (a customer's units in a category after a
cancellation, a day without orders) are deleted, because the source SELECTs are GROUP BYs
that have no such rows; that is what keeps ``verify`` clean.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, and_, case, delete, func, literal, select, update

from cqrs_layer.projections import Projection, ProjectionContext
from cqrs_layer.sql import dialect_insert, upsert

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


# -- catalog -------------------------------------------------------------------------------

catalog_projection = Projection("catalog", read_models=[catalog])
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


def _catalog_sold(connection: Connection, lines: list[OrderLineSnapshot], sign: int) -> None:
    for line in lines:
        connection.execute(
            update(catalog_view)
            .where(_cat.product_id == line.product_id)
            .values(units_sold=_cat.units_sold + sign * line.quantity, stock=line.stock_after)
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


@customers_projection.on(OrderPlaced)
def _customers_order_placed(event: OrderPlaced, ctx: ProjectionContext) -> None:
    connection = ctx.connection
    created_at = naive_utc(event.created_at)
    total = _revenue(event.lines)
    upsert(
        connection,
        customer_orders_view,
        {
            "order_id": event.order_id,
            "customer_id": event.customer_id,
            "status": "placed",
            "created_at": created_at,
            "line_count": len(event.lines),
            "item_count": _units(event.lines),
            "total_cents": total,
        },
    )
    statement = dialect_insert(connection, customer_summary_view).values(
        customer_id=event.customer_id,
        order_count=1,
        lifetime_value_cents=total,
        first_order_at=created_at,
        last_order_at=created_at,
    )
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=["customer_id"],
            set_={
                "order_count": _summary.order_count + 1,
                "lifetime_value_cents": _summary.lifetime_value_cents + total,
                "first_order_at": case(
                    (_summary.first_order_at.is_(None), created_at),
                    (_summary.first_order_at > created_at, created_at),
                    else_=_summary.first_order_at,
                ),
                "last_order_at": case(
                    (_summary.last_order_at.is_(None), created_at),
                    (_summary.last_order_at < created_at, created_at),
                    else_=_summary.last_order_at,
                ),
            },
        )
    )
    for line in event.lines:
        _add_customer_product_units(connection, event.customer_id, line)


def _add_customer_product_units(
    connection: Connection, customer_id: int, line: OrderLineSnapshot
) -> None:
    # A product's category is the one already filed for this customer if any (category
    # moves re-file every row), so the category units always add up to the product units.
    statement = dialect_insert(connection, customer_product_units_view).values(
        customer_id=customer_id,
        product_id=line.product_id,
        category_id=line.category_id,
        units=line.quantity,
    )
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=["customer_id", "product_id"],
            set_={"units": _cpu.units + line.quantity},
        )
    )
    filed = (
        select(
            _cpu.customer_id,
            _cpu.category_id,
            categories_view.c.name,
            literal(line.quantity).label("units"),
        )
        .join(categories_view, categories_view.c.category_id == _cpu.category_id)
        .where(_cpu.customer_id == customer_id, _cpu.product_id == line.product_id)
    )
    insert_units = dialect_insert(connection, customer_category_units_view).from_select(
        ["customer_id", "category_id", "category_name", "units"], filed
    )
    connection.execute(
        insert_units.on_conflict_do_update(
            index_elements=["customer_id", "category_id"],
            set_={"units": _ccu.units + insert_units.excluded.units},
        )
    )


def _set_status(connection: Connection, order_id: int, status: str) -> None:
    connection.execute(
        update(customer_orders_view).where(_orders.order_id == order_id).values(status=status)
    )


@customers_projection.on(OrderPaid)
def _customers_order_paid(event: OrderPaid, ctx: ProjectionContext) -> None:
    _set_status(ctx.connection, event.order_id, "paid")


@customers_projection.on(OrderShipped)
def _customers_order_shipped(event: OrderShipped, ctx: ProjectionContext) -> None:
    _set_status(ctx.connection, event.order_id, "shipped")


@customers_projection.on(OrderCancelled)
def _customers_order_cancelled(event: OrderCancelled, ctx: ProjectionContext) -> None:
    connection = ctx.connection
    customer_id = event.customer_id
    _set_status(connection, event.order_id, CANCELLED)
    # The counters first: this UPDATE locks the summary row, so on PostgreSQL the
    # recompute below starts after any concurrent order of this customer committed and
    # sees it (READ COMMITTED takes a fresh snapshot per statement).
    mine = _summary.customer_id == customer_id
    connection.execute(
        update(customer_summary_view)
        .where(mine)
        .values(
            order_count=_summary.order_count - 1,
            lifetime_value_cents=_summary.lifetime_value_cents - _revenue(event.lines),
        )
    )
    counted = and_(_orders.customer_id == customer_id, _orders.status != CANCELLED)
    connection.execute(
        update(customer_summary_view)
        .where(mine)
        .values(
            first_order_at=select(func.min(_orders.created_at)).where(counted).scalar_subquery(),
            last_order_at=select(func.max(_orders.created_at)).where(counted).scalar_subquery(),
        )
    )
    for line in event.lines:
        # Category units first, while the product row still says where it is filed.
        filed_under = (
            select(_cpu.category_id)
            .where(_cpu.customer_id == customer_id, _cpu.product_id == line.product_id)
            .scalar_subquery()
        )
        connection.execute(
            update(customer_category_units_view)
            .where(_ccu.customer_id == customer_id, _ccu.category_id == filed_under)
            .values(units=_ccu.units - line.quantity)
        )
        connection.execute(
            update(customer_product_units_view)
            .where(_cpu.customer_id == customer_id, _cpu.product_id == line.product_id)
            .values(units=_cpu.units - line.quantity)
        )
    for table, units in ((customer_category_units_view, _ccu), (customer_product_units_view, _cpu)):
        connection.execute(delete(table).where(units.customer_id == customer_id, units.units <= 0))


@customers_projection.on(ProductUpdated)
def _customers_product_updated(event: ProductUpdated, ctx: ProjectionContext) -> None:
    """A product moved category: re-file its units and recompute its buyers' categories.

    Set-based over the read tables: one UPDATE re-files the product's per-customer units,
    then each affected customer's category units are rebuilt from their product units
    (a DELETE and an INSERT ... SELECT ... GROUP BY). The legacy tables are not read, so
    this still works once the read models live in another database.
    """
    connection = ctx.connection
    moved = connection.execute(
        update(customer_product_units_view)
        .where(
            _cpu.product_id == event.product_id,
            _cpu.category_id != event.category_id,
        )
        .values(category_id=event.category_id)
    ).rowcount
    if not moved:
        return  # same category, or nobody bought it
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
    "product_sales", read_models=[product_sales, product_daily_sales]
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


def _record_product_sale(
    connection: Connection, day: date, line: OrderLineSnapshot, sign: int
) -> None:
    units = sign * line.quantity
    revenue = sign * line.quantity * line.unit_price_cents
    # The product's totals row first: it serializes every change to this product's daily
    # rows, so the running totals below are computed from committed neighbours.
    connection.execute(
        update(product_sales_view)
        .where(_ps.product_id == line.product_id)
        .values(units_sold=_ps.units_sold + units, revenue_cents=_ps.revenue_cents + revenue)
    )
    # Later days' running totals include this day.
    connection.execute(
        update(product_daily_sales_view)
        .where(_pds.product_id == line.product_id, _pds.day > day)
        .values(
            cumulative_units=_pds.cumulative_units + units,
            cumulative_revenue_cents=_pds.cumulative_revenue_cents + revenue,
        )
    )

    def before(column: Any) -> Any:
        latest = (
            select(column)
            .where(_pds.product_id == line.product_id, _pds.day < day)
            .order_by(_pds.day.desc())
            .limit(1)
            .scalar_subquery()
        )
        return func.coalesce(latest, 0)

    statement = dialect_insert(connection, product_daily_sales_view).values(
        product_id=line.product_id,
        day=day,
        units=units,
        revenue_cents=revenue,
        cumulative_units=before(_pds.cumulative_units) + units,
        cumulative_revenue_cents=before(_pds.cumulative_revenue_cents) + revenue,
    )
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=["product_id", "day"],
            set_={
                "units": _pds.units + units,
                "revenue_cents": _pds.revenue_cents + revenue,
                "cumulative_units": _pds.cumulative_units + units,
                "cumulative_revenue_cents": _pds.cumulative_revenue_cents + revenue,
            },
        )
    )
    if sign < 0:
        # A day left without sales has no row in the source; the running totals of the
        # days around it are unaffected (its own contribution is zero).
        connection.execute(
            delete(product_daily_sales_view).where(
                _pds.product_id == line.product_id, _pds.day == day, _pds.units <= 0
            )
        )


@product_sales_projection.on(OrderPlaced)
def _sales_order_placed(event: OrderPlaced, ctx: ProjectionContext) -> None:
    day = utc_day_of(event.created_at)
    # In product id order, so two orders over the same products lock rows alike.
    for line in sorted(event.lines, key=lambda line: line.product_id):
        _record_product_sale(ctx.connection, day, line, +1)


@product_sales_projection.on(OrderCancelled)
def _sales_order_cancelled(event: OrderCancelled, ctx: ProjectionContext) -> None:
    day = utc_day_of(event.created_at)
    for line in sorted(event.lines, key=lambda line: line.product_id):
        _record_product_sale(ctx.connection, day, line, -1)


# -- daily sales ---------------------------------------------------------------------------

daily_sales_projection = Projection("daily_sales", read_models=[daily_sales])
_daily = daily_sales_view.c


def _record_daily_sale(connection: Connection, day: date, lines: list[Any], sign: int) -> None:
    orders, units, revenue = sign, sign * _units(lines), sign * _revenue(lines)
    statement = dialect_insert(connection, daily_sales_view).values(
        day=day, order_count=orders, units=units, revenue_cents=revenue
    )
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=["day"],
            set_={
                "order_count": _daily.order_count + orders,
                "units": _daily.units + units,
                "revenue_cents": _daily.revenue_cents + revenue,
            },
        )
    )
    if sign < 0:
        connection.execute(
            delete(daily_sales_view).where(_daily.day == day, _daily.order_count <= 0)
        )


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
