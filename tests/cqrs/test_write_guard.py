"""Writes outside the commands keep the shop's read models exact: every read model has
change capture, so an ORM flush, a Core statement, raw SQL or a legacy write endpoint is
recomputed before it commits, and the write guard, which exists for read models kept by
projections alone, has nothing to say about them (see tests/toolkit/test_guard.py for it).
A writer outside the app leaves its changes pending until ``flask cqrs refresh``."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text, update

from cqrs_layer import signals
from cqrs_layer.core.tables import changes
from cqrs_layer.testing import assert_read_models_exact, read_model_drift
from legacy_app.models import Customer, Product, Stock

from ..factories import CategoryFactory, CustomerFactory, ProductFactory
from ..variants import COMMANDS, LEGACY
from .outside import write_outside_the_app


@pytest.fixture
def app_variant(request):
    """Writes through commands, unless a test asks for another app."""
    return getattr(request, "param", COMMANDS)


legacy_writes = pytest.mark.parametrize("app_variant", [LEGACY], indirect=True)
strict = pytest.mark.parametrize(
    "app_variant", [LEGACY.with_settings(CQRS_WRITE_GUARD="strict")], indirect=True
)


@pytest.fixture
def shop(app, db_session):
    """Kitchen; product 1 MUG (1000c, stock 5); customer 1; written by factories, outside
    any command, and the read models exact all the same."""
    kitchen = CategoryFactory(name="Kitchen")
    ProductFactory(sku="MUG", name="Mug", price_cents=1000, category=kitchen)
    db_session.execute(update(Stock).values(quantity=5))
    CustomerFactory(email="ann@example.com", name="Ann")
    db_session.commit()
    assert_read_models_exact(app)


@pytest.fixture
def unguarded(app):
    """Every unguarded-write signal the app sends, as its keyword arguments."""
    seen = []

    def record(_sender, **extra):
        seen.append(extra)

    signals.unguarded_write.connect(record, sender=app)
    yield seen
    signals.unguarded_write.disconnect(record, sender=app)


def pending(db_session):
    return db_session.scalar(select(func.count()).select_from(changes))


def catalog_row(client):
    return client.get("/api/products/1").get_json()


def test_an_orm_write_is_recomputed_before_it_commits(app, db_session, shop, unguarded):
    db_session.get(Product, 1).price_cents = 1
    db_session.commit()

    assert_read_models_exact(app)
    assert pending(db_session) == 0
    assert unguarded == []


def test_a_core_write_is_recomputed_too(app, db_session, shop, unguarded):
    db_session.execute(update(Stock).where(Stock.product_id == 1).values(quantity=0))
    db_session.commit()

    assert_read_models_exact(app)
    assert unguarded == []


def test_raw_sql_is_recomputed_too(app, db_session, shop):
    db_session.execute(text("UPDATE stock SET quantity = quantity + 7 WHERE product_id = 1"))
    db_session.commit()

    assert_read_models_exact(app)
    assert pending(db_session) == 0


@legacy_writes
def test_a_legacy_write_endpoint_keeps_them_exact(app, client, db_session, shop, unguarded):
    response = client.post("/api/products/1/restock", json={"quantity": 3})

    assert response.status_code == 200
    assert response.headers["X-CQRS-Served-By"] == "legacy"
    assert_read_models_exact(app)
    assert unguarded == []


@strict
def test_strict_mode_lets_writes_to_captured_read_models_through(
    app, client, db_session, shop, unguarded
):
    """Strict refuses writes no read model would hear of; these are all captured."""
    response = client.post("/api/products/1/restock", json={"quantity": 3})

    assert response.status_code == 200
    assert db_session.scalar(select(Stock.quantity).where(Stock.product_id == 1)) == 8
    assert unguarded == []
    assert_read_models_exact(app)


def test_a_writer_outside_the_app_leaves_changes_pending_until_refreshed(
    app, runner, db_session, shop
):
    write_outside_the_app(app, "UPDATE stock SET quantity = 42 WHERE product_id = 1")

    drift = read_model_drift(app)
    assert set(drift) == {"catalog"}
    assert drift["catalog"]["rows"] == [
        {"kind": "different", "key": {"product_id": 1}, "columns": {
            "stock": {"expected": 42, "actual": 5}}}
    ]  # fmt: skip
    assert pending(db_session) >= 1

    result = runner.invoke(args=["cqrs", "refresh"])

    assert result.exit_code == 0, result.output
    assert "catalog: 1 keys refreshed" in result.output
    assert_read_models_exact(app)
    assert pending(db_session) == 0
    again = runner.invoke(args=["cqrs", "refresh"])
    assert again.stdout == "nothing pending\n"


def test_a_write_to_a_column_no_read_model_reads_changes_nothing(app, db_session, shop):
    """customer_summary reads a customer's id only: renaming one records no change."""
    write_outside_the_app(app, "UPDATE customers SET name = 'Ann B', email = 'b@x.org'")

    assert pending(db_session) == 0
    assert db_session.scalar(select(Customer.name)) == "Ann B"
    assert_read_models_exact(app)
