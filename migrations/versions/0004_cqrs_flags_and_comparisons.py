"""CQRS stage 4: the toolkit's rollout flags, their audit log and the comparison records.

``cqrs_flags`` (each endpoint's stage and percentage), ``cqrs_flag_audit`` (who changed
which flag, when, from, to and why) and ``cqrs_comparisons`` (legacy vs read-model answers
compared off the request path): cqrs_layer/tables.py and cqrs_layer/comparisons.py.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Position = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "cqrs_flags",
        sa.Column("endpoint", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("stage", sa.String(length=20), nullable=False),
        sa.Column("percent", sa.Float(), nullable=False),
        sa.Column("sample_rate", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("endpoint", name=op.f("pk_cqrs_flags")),
    )
    op.create_table(
        "cqrs_flag_audit",
        sa.Column("id", Position, autoincrement=True, nullable=False),
        sa.Column("endpoint", sa.String(length=200), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("from_stage", sa.String(length=20), nullable=True),
        sa.Column("to_stage", sa.String(length=20), nullable=False),
        sa.Column("from_percent", sa.Float(), nullable=True),
        sa.Column("to_percent", sa.Float(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("forced", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cqrs_flag_audit")),
    )
    op.create_index("ix_cqrs_flag_audit_endpoint_at", "cqrs_flag_audit", ["endpoint", "at"])
    op.create_table(
        "cqrs_comparisons",
        sa.Column("id", Position, autoincrement=True, nullable=False),
        sa.Column("endpoint", sa.String(length=200), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("stage", sa.String(length=20), nullable=False),
        sa.Column("served_by", sa.String(length=20), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("method", sa.String(length=10), nullable=False),
        sa.Column("path", sa.String(length=2000), nullable=False),
        sa.Column("legacy_status", sa.Integer(), nullable=True),
        sa.Column("new_status", sa.Integer(), nullable=True),
        sa.Column("legacy_ms", sa.Float(), nullable=True),
        sa.Column("new_ms", sa.Float(), nullable=True),
        sa.Column("legacy_error", sa.Text(), nullable=True),
        sa.Column("new_error", sa.Text(), nullable=True),
        sa.Column("diff", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cqrs_comparisons")),
    )
    op.create_index("ix_cqrs_comparisons_endpoint_id", "cqrs_comparisons", ["endpoint", "id"])


def downgrade() -> None:
    for table in ("cqrs_comparisons", "cqrs_flag_audit", "cqrs_flags"):
        op.drop_table(table)
