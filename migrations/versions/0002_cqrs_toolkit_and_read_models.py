"""CQRS stages 1-3: the toolkit's write-side tables and the shop's read-model tables.

- ``cqrs_outbox`` (domain events, written with the command's transaction),
  ``cqrs_projection_tracking`` (which event each projection applied),
  ``cqrs_idempotency_keys`` (first responses replayed on retries): cqrs_layer/tables.py;
- the read models of legacy_app/cqrs/read_models.py. They start empty: fill them with
  ``flask --app legacy_app cqrs backfill`` before serving reads from them.

Written out here rather than imported from the code, so this revision keeps creating the
same schema whatever the code becomes later. The catalog's ``name`` sorts by code point,
which PostgreSQL is told by the column's collation (``"C"``) and SQLite does anyway.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# BIGINT positions, except on SQLite, which only auto-increments an INTEGER PRIMARY KEY.
Position = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

READ_MODEL_TABLES = (
    "catalog_view",
    "customer_orders_view",
    "customer_summary_view",
    "categories_view",
    "customer_product_units_view",
    "customer_category_units_view",
    "product_sales_view",
    "product_daily_sales_view",
    "daily_sales_view",
)
TOOLKIT_TABLES = ("cqrs_outbox", "cqrs_projection_tracking", "cqrs_idempotency_keys")


def upgrade() -> None:
    _create_toolkit_tables()
    _create_read_model_tables()


def downgrade() -> None:
    for table in (*READ_MODEL_TABLES, *TOOLKIT_TABLES):
        op.drop_table(table)


def _create_toolkit_tables() -> None:
    op.create_table(
        "cqrs_outbox",
        sa.Column("position", Position, autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("event_type", sa.String(length=200), nullable=False),
        sa.Column("aggregate_type", sa.String(length=100), nullable=False),
        sa.Column("aggregate_id", sa.String(length=100), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
        sa.Column("correlation_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("position", name=op.f("pk_cqrs_outbox")),
        sa.UniqueConstraint("event_id", name=op.f("uq_cqrs_outbox_event_id")),
    )
    op.create_index("ix_cqrs_outbox_aggregate", "cqrs_outbox", ["aggregate_type", "aggregate_id"])
    op.create_table(
        "cqrs_projection_tracking",
        sa.Column("projection", sa.String(length=100), nullable=False),
        sa.Column("position", Position, nullable=False),
        sa.PrimaryKeyConstraint("projection", "position", name=op.f("pk_cqrs_projection_tracking")),
    )
    op.create_table(
        "cqrs_idempotency_keys",
        sa.Column("endpoint", sa.String(length=200), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response_body", sa.Text(), nullable=False),
        sa.Column("response_headers", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("endpoint", "key", name=op.f("pk_cqrs_idempotency_keys")),
    )


def _create_read_model_tables() -> None:

    op.create_table(
        "catalog_view",
        sa.Column("product_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("sku", sa.String(length=40), nullable=False),
        # Code-point order on PostgreSQL too, like the legacy catalog's name sort.
        sa.Column(
            "name",
            sa.String(length=200).with_variant(sa.String(length=200, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("price_cents", sa.Integer(), nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=False),
        sa.Column("category_name", sa.String(length=80), nullable=False),
        sa.Column("stock", sa.Integer(), nullable=True),
        sa.Column("rating_sum", sa.BigInteger(), nullable=False),
        sa.Column("rating_count", sa.Integer(), nullable=False),
        sa.Column("rating_sort_key", sa.Float(), nullable=False),
        sa.Column("units_sold", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("product_id", name=op.f("pk_catalog_view")),
    )
    # DESC puts NULLs (unrated) last on SQLite by itself; PostgreSQL must be told.
    catalog_indexes: dict[str, list[str | sa.TextClause]] = {
        "ix_catalog_view_name_sort": ["name", "product_id"],
        "ix_catalog_view_name_desc_sort": [sa.text("name DESC"), "product_id"],
        "ix_catalog_view_price_sort": ["price_cents", "product_id"],
        "ix_catalog_view_price_desc_sort": [sa.text("price_cents DESC"), "product_id"],
        "ix_catalog_view_popularity_sort": [sa.text("units_sold DESC"), "product_id"],
        "ix_catalog_view_rating_sort": [sa.text("rating_sort_key DESC"), "product_id"],
        "ix_catalog_view_category": ["category_id", "name", "product_id"],
        "ix_catalog_view_stock": ["stock", "product_id"],
    }
    for index_name, columns in catalog_indexes.items():
        op.create_index(index_name, "catalog_view", columns)

    op.create_table(
        "customer_orders_view",
        sa.Column("order_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("line_count", sa.Integer(), nullable=False),
        sa.Column("item_count", sa.BigInteger(), nullable=False),
        sa.Column("total_cents", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_customer_orders_view")),
    )
    op.create_index(
        "ix_customer_orders_view_history",
        "customer_orders_view",
        ["customer_id", "created_at", "order_id"],
    )

    op.create_table(
        "customer_summary_view",
        sa.Column("customer_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("order_count", sa.Integer(), nullable=False),
        sa.Column("lifetime_value_cents", sa.BigInteger(), nullable=False),
        sa.Column("first_order_at", sa.DateTime(), nullable=True),
        sa.Column("last_order_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_customer_summary_view")),
    )

    op.create_table(
        "categories_view",
        sa.Column("category_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.PrimaryKeyConstraint("category_id", name=op.f("pk_categories_view")),
    )

    op.create_table(
        "customer_product_units_view",
        sa.Column("customer_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("product_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=False),
        sa.Column("units", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "customer_id", "product_id", name=op.f("pk_customer_product_units_view")
        ),
    )
    op.create_index(
        "ix_customer_product_units_view_product", "customer_product_units_view", ["product_id"]
    )

    op.create_table(
        "customer_category_units_view",
        sa.Column("customer_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("category_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("category_name", sa.String(length=80), nullable=False),
        sa.Column("units", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "customer_id", "category_id", name=op.f("pk_customer_category_units_view")
        ),
    )
    op.create_index(
        "ix_customer_category_units_view_favourite",
        "customer_category_units_view",
        ["customer_id", sa.text("units DESC"), "category_id"],
    )

    op.create_table(
        "product_sales_view",
        sa.Column("product_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("sku", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("units_sold", sa.BigInteger(), nullable=False),
        sa.Column("revenue_cents", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("product_id", name=op.f("pk_product_sales_view")),
    )
    op.create_index(
        "ix_product_sales_view_best_sellers",
        "product_sales_view",
        [sa.text("units_sold DESC"), "product_id"],
    )

    op.create_table(
        "product_daily_sales_view",
        sa.Column("product_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("units", sa.BigInteger(), nullable=False),
        sa.Column("revenue_cents", sa.BigInteger(), nullable=False),
        sa.Column("cumulative_units", sa.BigInteger(), nullable=False),
        sa.Column("cumulative_revenue_cents", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("product_id", "day", name=op.f("pk_product_daily_sales_view")),
        # Clustered on its key on SQLite: the top-products seek reads the row from the key.
        sqlite_with_rowid=False,
    )

    op.create_table(
        "daily_sales_view",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("order_count", sa.Integer(), nullable=False),
        sa.Column("units", sa.BigInteger(), nullable=False),
        sa.Column("revenue_cents", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_daily_sales_view")),
    )
