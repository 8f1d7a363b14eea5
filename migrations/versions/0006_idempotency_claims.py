"""Idempotency keys on every write path: a key row may be a claim, without a response yet.

A legacy view commits by itself, so its ``Idempotency-Key`` is claimed in the view's first
commit and its response stored on the claim once the view has answered (see
cqrs_layer/write/idempotency.py): ``cqrs_idempotency_keys``' response columns become
nullable. Downgrading deletes the claims (rows without a response) first.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RESPONSE_COLUMNS = (
    ("status_code", sa.Integer()),
    ("response_body", sa.Text()),
    ("response_headers", sa.JSON()),
)


def upgrade() -> None:
    with op.batch_alter_table("cqrs_idempotency_keys") as table:
        for name, type_ in RESPONSE_COLUMNS:
            table.alter_column(name, existing_type=type_, nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM cqrs_idempotency_keys WHERE status_code IS NULL")
    with op.batch_alter_table("cqrs_idempotency_keys") as table:
        for name, type_ in RESPONSE_COLUMNS:
            table.alter_column(name, existing_type=type_, nullable=False)
