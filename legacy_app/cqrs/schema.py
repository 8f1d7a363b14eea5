"""The tables the shop's migration to CQRS adds: the toolkit's own (outbox, flags,
comparisons, change capture, ...) and the shop's read models, for alembic's env.py and for
tests that build the schema without migrating."""

from __future__ import annotations

from sqlalchemy import MetaData

from cqrs_layer.schema import migration_metadata

from .read_models import READ_MODELS


def cqrs_metadata() -> list[MetaData]:
    return migration_metadata(read_models=READ_MODELS)
