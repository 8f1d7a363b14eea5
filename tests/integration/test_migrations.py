"""The alembic history builds exactly the schema the models declare, on every backend.

Two independent checks, because each is blind somewhere:
- alembic's autogenerate comparison (what ``alembic check`` runs) sees columns, types,
  nullability, indexes, unique constraints and foreign keys, but not CHECK constraints;
- a reflected snapshot of the migrated database, compared with one of a database built by
  ``metadata.create_all()``, sees every named constraint, server defaults and sequences.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, MetaData, String, create_engine, inspect

from legacy_app import create_app
from legacy_app.cqrs.schema import cqrs_metadata
from legacy_app.extensions import db
from legacy_app.migrate import (
    REPO_ROOT,
    downgrade_database,
    resolve_database_url,
    upgrade_database,
)

from ..databases import backends, temporary_postgres_database


def target_metadata() -> list[MetaData]:
    """What migrations/env.py gives alembic: the shop's tables, then its migration's."""
    return [db.metadata, *cqrs_metadata()]


@pytest.fixture(params=backends())
def empty_database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A brand-new, empty database per test, so no other test's create_all() leaks in."""
    if request.param == "postgresql":
        with temporary_postgres_database(prefix="migrations_test") as url:
            yield url
    else:
        with tempfile.TemporaryDirectory(prefix="shop-migrations-") as tmp:
            yield f"sqlite:///{tmp}/shop.db"


@pytest.fixture
def second_empty_database_url(empty_database_url: str) -> Iterator[str]:
    """Another empty database on the same backend, to build with create_all()."""
    if empty_database_url.startswith("postgresql"):
        with temporary_postgres_database(prefix="migrations_ref") as url:
            yield url
    else:
        with tempfile.TemporaryDirectory(prefix="shop-reference-") as tmp:
            yield f"sqlite:///{tmp}/shop.db"


def merged_metadata(extra_columns: dict[str, Column[Any]] | None = None) -> MetaData:
    """All migrated tables on one MetaData (optionally with extra columns for the self-test)."""
    merged = MetaData()
    for metadata in target_metadata():
        for table in metadata.tables.values():
            table.to_metadata(merged)
    for table_name, column in (extra_columns or {}).items():
        merged.tables[table_name].append_column(column)
    return merged


def schema_differences(url: str, metadata: MetaData) -> list[Any]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(context, metadata))
    finally:
        engine.dispose()


def reflected_schema(url: str) -> dict[str, Any]:
    """Everything reflection can see about each table, in a comparable, ordered form."""
    engine = create_engine(url)
    try:
        inspector = inspect(engine)
        schema: dict[str, Any] = {}
        for table in sorted(inspector.get_table_names()):
            if table == "alembic_version":
                continue
            schema[table] = {
                "columns": [
                    (c["name"], str(c["type"]), c["nullable"], c.get("default"))
                    for c in inspector.get_columns(table)
                ],
                "primary_key": inspector.get_pk_constraint(table)["constrained_columns"],
                "foreign_keys": sorted(
                    (fk["name"], tuple(fk["constrained_columns"]), fk["referred_table"])
                    for fk in inspector.get_foreign_keys(table)
                ),
                "indexes": sorted(
                    (ix["name"], tuple(ix["column_names"]), bool(ix["unique"]))
                    for ix in inspector.get_indexes(table)
                ),
                "unique": sorted(
                    (uq["name"], tuple(uq["column_names"]))
                    for uq in inspector.get_unique_constraints(table)
                ),
                "checks": sorted(ck["name"] for ck in inspector.get_check_constraints(table)),
            }
        return schema
    finally:
        engine.dispose()


def table_names(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_head_matches_the_models(empty_database_url):
    upgrade_database(empty_database_url)

    assert schema_differences(empty_database_url, merged_metadata()) == []


def test_upgrade_head_builds_the_same_schema_as_create_all(
    empty_database_url, second_empty_database_url
):
    upgrade_database(empty_database_url)
    engine = create_engine(second_empty_database_url)
    for metadata in target_metadata():
        metadata.create_all(engine)
    engine.dispose()

    migrated = reflected_schema(empty_database_url)
    assert migrated == reflected_schema(second_empty_database_url)
    # The snapshot really holds the constraints the models name (not two empty dicts).
    assert migrated["orders"]["checks"] == ["ck_orders_status_known"]
    assert ("fk_stock_product_id_products", ("product_id",), "products") in migrated["stock"][
        "foreign_keys"
    ]


def test_a_model_column_without_a_migration_is_detected(empty_database_url):
    upgrade_database(empty_database_url)
    unmigrated = Column("colour", String(20), nullable=True)

    differences = schema_differences(
        empty_database_url, merged_metadata(extra_columns={"products": unmigrated})
    )

    assert [(d[0], d[2], d[3].name) for d in differences] == [("add_column", "products", "colour")]


def test_downgrade_to_base_then_upgrade_again(empty_database_url):
    upgrade_database(empty_database_url)

    downgrade_database(empty_database_url, "base")
    assert table_names(empty_database_url) == {"alembic_version"}

    upgrade_database(empty_database_url)
    assert schema_differences(empty_database_url, merged_metadata()) == []
    expected = {t for m in target_metadata() for t in m.tables} | {"alembic_version"}
    assert table_names(empty_database_url) == expected


def test_migrations_default_to_the_database_the_app_opens(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)

    app_url = create_app().config["SQLALCHEMY_DATABASE_URI"]

    assert resolve_database_url() == app_url == f"sqlite:///{REPO_ROOT}/instance/shop.db"


def test_migrations_follow_database_url_like_the_app(monkeypatch, tmp_path):
    url = f"sqlite:///{tmp_path}/elsewhere.db"
    monkeypatch.setenv("DATABASE_URL", url)

    assert resolve_database_url() == create_app().config["SQLALCHEMY_DATABASE_URI"] == url
    assert resolve_database_url("sqlite://") == "sqlite://"
