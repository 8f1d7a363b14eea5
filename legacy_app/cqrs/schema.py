"""The tables the shop's migration to CQRS adds, for alembic's ``target_metadata``: the
toolkit's own (outbox, projection tracking, idempotency keys, flags, comparisons) and the
shop's read models."""

from __future__ import annotations

from sqlalchemy import MetaData

from cqrs_layer.schema import metadata as toolkit_metadata

from .read_models import read_metadata


def cqrs_metadata() -> list[MetaData]:
    return [toolkit_metadata, read_metadata]
