"""Optimistic concurrency: a ``version`` counter on products and customers.

The ORM (``version_id_col``) checks and bumps it on every UPDATE and DELETE, so a request
that read an old version cannot silently overwrite a newer one (it gets a 409). Existing
rows start at version 1 (the server default).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VERSIONED_TABLES = ("products", "customers")


def upgrade() -> None:
    for table in VERSIONED_TABLES:
        # ADD COLUMN with a constant default needs no table rebuild on either backend.
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False)
            )


def downgrade() -> None:
    for table in VERSIONED_TABLES:
        # SQLite >= 3.35 drops a column in place: no rebuild that could lose the CHECK
        # constraints batch mode does not reflect.
        with op.batch_alter_table(table, recreate="never") as batch:
            batch.drop_column("version")
