"""A write that bypasses the commands (a direct ORM or Core write, or a write endpoint still
on its legacy path) is caught by the write guard: logged, counted, signalled, refused in
strict mode. ``verify`` then reports the drift it caused and ``verify --repair`` fixes it."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select, update

from cqrs_layer import allow_unguarded_writes, signals
from cqrs_layer.core import metrics
from cqrs_layer.core.errors import UnguardedWriteError
from cqrs_layer.ops.context import toolkit_of
from cqrs_layer.read.verify import verify
from cqrs_layer.testing import assert_read_models_exact
from cqrs_layer.write.guard import NO_REQUEST
from legacy_app.cqrs.read_models import catalog
from legacy_app.extensions import db
from legacy_app.models import Product, Stock

from ..api import shop_snapshot
from ..factories import CategoryFactory, CustomerFactory, ProductFactory
from ..variants import COMMANDS, LEGACY
from .conftest import backfill


@pytest.fixture
def app_variant(request):
    """Writes through commands, unless a test asks for another app."""
    return getattr(request, "param", COMMANDS)


legacy_writes = pytest.mark.parametrize("app_variant", [LEGACY], indirect=True)
strict = pytest.mark.parametrize(
    "app_variant", [COMMANDS.with_settings(CQRS_WRITE_GUARD="strict")], indirect=True
)
strict_legacy_writes = pytest.mark.parametrize(
    "app_variant", [LEGACY.with_settings(CQRS_WRITE_GUARD="strict")], indirect=True
)


@pytest.fixture
def shop(app, client, db_session):
    """Kitchen; product 1 MUG (1000c, stock 5); customer 1. Read models agree."""
    if app.config["CQRS_DEFAULT_WRITE_STAGE"] == "command":
        client.post("/api/categories", json={"name": "Kitchen"})
        client.post(
            "/api/products",
            json={"sku": "MUG", "name": "Mug", "price_cents": 1000, "category_id": 1, "stock": 5},
        )
        client.post("/api/customers", json={"email": "ann@example.com", "name": "Ann"})
    else:  # no command path: build the rows directly and the read models by backfill
        with allow_unguarded_writes():
            kitchen = CategoryFactory(name="Kitchen")
            ProductFactory(sku="MUG", name="Mug", price_cents=1000, category=kitchen)
            db_session.execute(update(Stock).values(quantity=5))
            CustomerFactory(email="ann@example.com", name="Ann")
            db_session.commit()
        backfill(app)
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


def counted(table):
    return metrics.unguarded_writes_total.labels(table=table)._value.get()


def test_a_direct_orm_write_is_caught_reported_by_verify_and_repaired(
    app, db_session, runner, shop, unguarded, caplog
):
    before = counted("products")

    with caplog.at_level(logging.WARNING, logger="cqrs_layer.write.guard"):
        db_session.get(Product, 1).price_cents = 1
        db_session.commit()

    assert unguarded == [{"tables": ["products"], "strict": False, "endpoint": NO_REQUEST}]
    assert counted("products") == before + 1
    assert "write to guarded table(s) products outside a command" in caplog.text
    assert toolkit_of(app).guard.writers() == {NO_REQUEST: frozenset({"products"})}

    report = verify(db.engine, catalog)
    # updated_at too: the ORM stamps it on every UPDATE of a product.
    assert [(d.key, d.columns) for d in report.different] == [
        ({"product_id": 1}, ("price_cents", "updated_at"))
    ]
    price = report.different[0].to_dict()["columns"]["price_cents"]
    assert price == {"expected": 1, "actual": 1000}

    checked = runner.invoke(args=["cqrs", "verify"])
    assert checked.exit_code == 1
    assert "catalog: DRIFT missing=0 extra=0 different=1" in checked.output

    repaired = runner.invoke(args=["cqrs", "verify", "--repair"])
    assert repaired.exit_code == 0, repaired.output
    assert "repaired: inserted 0, deleted 0, updated 1" in repaired.output
    assert "after repair: OK" in repaired.output
    assert_read_models_exact(app)


def test_a_core_write_is_caught_too(app, db_session, shop, unguarded):
    db_session.execute(update(Stock).where(Stock.product_id == 1).values(quantity=0))
    db_session.commit()

    assert unguarded == [{"tables": ["stock"], "strict": False, "endpoint": NO_REQUEST}]
    report = verify(db.engine, catalog)
    assert [(d.key, d.columns) for d in report.different] == [({"product_id": 1}, ("stock",))]


def test_writes_through_commands_are_not_caught(app, client, shop, unguarded):
    response = client.post("/api/products/1/restock", json={"quantity": 2})

    assert response.status_code == 200
    assert response.headers["X-CQRS-Served-By"] == "command"
    assert unguarded == []
    guard = toolkit_of(app).guard
    assert guard.writers() == {}
    assert guard.command_writers()["products.restock_product"] == frozenset({"stock"})
    assert_read_models_exact(app)


@legacy_writes
def test_a_legacy_write_endpoint_is_caught_and_its_drift_repaired(
    app, client, db_session, runner, shop, unguarded
):
    response = client.post("/api/products/1/restock", json={"quantity": 3})

    assert response.status_code == 200
    assert response.headers["X-CQRS-Served-By"] == "legacy"
    assert unguarded == [
        {"tables": ["stock"], "strict": False, "endpoint": "products.restock_product"}
    ]
    assert toolkit_of(app).guard.writers() == {"products.restock_product": frozenset({"stock"})}
    report = verify(db.engine, catalog)
    assert [(d.key, d.columns) for d in report.different] == [({"product_id": 1}, ("stock",))]
    assert report.different[0].to_dict()["columns"] == {"stock": {"expected": 8, "actual": 5}}

    repaired = runner.invoke(args=["cqrs", "verify", "catalog", "--repair"])
    assert repaired.exit_code == 0, repaired.output
    assert_read_models_exact(app)


@strict
def test_strict_mode_refuses_a_direct_write_and_keeps_nothing(app, db_session, shop, unguarded):
    before = shop_snapshot(db_session)

    db_session.get(Product, 1).price_cents = 1
    with pytest.raises(UnguardedWriteError, match="products"):
        db_session.commit()
    db_session.rollback()

    assert unguarded == [{"tables": ["products"], "strict": True, "endpoint": NO_REQUEST}]
    assert shop_snapshot(db_session) == before
    assert_read_models_exact(app)


@strict
def test_strict_mode_lets_commands_write(app, client, db_session, shop, unguarded):
    response = client.post("/api/products/1/restock", json={"quantity": 2})

    assert response.status_code == 200
    assert unguarded == []
    assert db_session.scalar(select(Stock.quantity).where(Stock.product_id == 1)) == 7
    assert_read_models_exact(app)


@strict_legacy_writes
def test_strict_mode_refuses_a_legacy_write_endpoint(app, client, db_session, shop, unguarded):
    before = shop_snapshot(db_session)

    response = client.post("/api/products/1/restock", json={"quantity": 3})

    # Refused on purpose, with a JSON answer naming the table: never a bare 500.
    assert response.status_code == 503
    error = response.get_json()["error"]
    assert error["code"] == "unguarded_write"
    assert "stock" in error["message"]
    assert [call["strict"] for call in unguarded] == [True]
    assert shop_snapshot(db_session) == before
    assert_read_models_exact(app)
