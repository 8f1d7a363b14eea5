"""Read models kept exact whatever writes: change capture for every shop read model.

``cqrs_changes`` (the read-model keys writes changed, recorded by triggers in the writing
transaction), ``cqrs_captures`` (which read models have capture installed, from which
declaration) and ``cqrs_writers`` (which endpoints write the sources of read models kept by
projections alone, shared by every process), then the capture triggers of the nine read
models, generated from their ``source()`` declarations (cqrs_layer.schema.install_capture).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from cqrs_layer.schema import install_capture, remove_capture
from legacy_app.cqrs.read_models import READ_MODELS

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Position = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "cqrs_changes",
        sa.Column("id", Position, autoincrement=True, nullable=False),
        sa.Column("model", sa.String(length=100), nullable=False),
        sa.Column("key", sa.Text(), nullable=True),
        sa.Column("txid", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cqrs_changes")),
    )
    op.create_index("ix_cqrs_changes_model_id", "cqrs_changes", ["model", "id"])
    op.create_index("ix_cqrs_changes_txid", "cqrs_changes", ["txid"])
    op.create_table(
        "cqrs_captures",
        sa.Column("model", sa.String(length=100), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("installed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("model", name=op.f("pk_cqrs_captures")),
    )
    op.create_table(
        "cqrs_writers",
        sa.Column("endpoint", sa.String(length=200), nullable=False),
        sa.Column("table_name", sa.String(length=200), nullable=False),
        sa.Column("inside_command", sa.Boolean(), nullable=False),
        sa.Column("first_seen", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint(
            "endpoint", "table_name", "inside_command", name=op.f("pk_cqrs_writers")
        ),
    )
    install_capture(op, *READ_MODELS)


def downgrade() -> None:
    remove_capture(op, *READ_MODELS)
    op.drop_table("cqrs_writers")
    op.drop_table("cqrs_captures")
    op.drop_index("ix_cqrs_changes_txid", table_name="cqrs_changes")
    op.drop_index("ix_cqrs_changes_model_id", table_name="cqrs_changes")
    op.drop_table("cqrs_changes")
