"""A write that bypasses the commands (a direct ORM or Core write, or a write endpoint still
on its legacy path) is caught by the write guard: logged, counted, signalled, refused in
strict mode. ``verify`` then reports the drift it caused and ``verify --repair`` fixes it."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select, update

from cqrs_layer import UnguardedWriteError, allow_unguarded_writes, metrics, signals
from cqrs_layer.backfill import backfill_all
from cqrs_layer.guard import NO_REQUEST
from cqrs_layer.verify import verify
from legacy_app.cqrs.read_models import READ_MODELS, catalog
from legacy_app.extensions import db
from legacy_app.models import Product, Stock

from ..api import shop_snapshot
from ..factories import CategoryFactory, CustomerFactory, ProductFactory


@pytest.fixture
def app_variant(request):
    """Writes through commands, unless a test asks for the legacy app."""
    return getattr(request, "param", "commands")


legacy_writes = pytest.mark.parametrize("app_variant", ["legacy"], indirect=True)


@pytest.fixture
def shop(app, client, db_session):
    """Kitchen; product 1 MUG (1000c, stock 5); customer 1. Read models agree."""
    if app.config["CQRS_DEFAULT_WRITE_MODE"] == "command":
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
        backfill_all(db.engine, READ_MODELS)
    assert_read_models_agree()


@pytest.fixture
def unguarded(app):
    """Every unguarded-write signal the app sends, as its keyword arguments."""
    seen = []

    def record(_sender, **extra):
        seen.append(extra)

    signals.unguarded_write.connect(record, sender=app)
    yield seen
    signals.unguarded_write.disconnect(record, sender=app)


def assert_read_models_agree():
    drift = [model.name for model in READ_MODELS if not verify(db.engine, model).ok]
    assert drift == []


def counted(table):
    return metrics.unguarded_writes_total.labels(table=table)._value.get()


def test_a_direct_orm_write_is_caught_reported_by_verify_and_repaired(
    app, db_session, runner, shop, unguarded, caplog
):
    before = counted("products")

    with caplog.at_level(logging.WARNING, logger="cqrs_layer.guard"):
        db_session.get(Product, 1).price_cents = 1
        db_session.commit()

    assert unguarded == [{"tables": ["products"], "strict": False, "endpoint": NO_REQUEST}]
    assert counted("products") == before + 1
    assert "write to guarded table(s) products outside a command" in caplog.text
    assert app.extensions["cqrs"].guard.writers() == {NO_REQUEST: frozenset({"products"})}

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
    assert_read_models_agree()


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
    guard = app.extensions["cqrs"].guard
    assert guard.writers() == {}
    assert guard.command_writers()["products.restock_product"] == frozenset({"stock"})
    assert_read_models_agree()


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
    assert app.extensions["cqrs"].guard.writers() == {
        "products.restock_product": frozenset({"stock"})
    }
    report = verify(db.engine, catalog)
    assert [(d.key, d.columns) for d in report.different] == [({"product_id": 1}, ("stock",))]
    assert report.different[0].to_dict()["columns"] == {"stock": {"expected": 8, "actual": 5}}

    repaired = runner.invoke(args=["cqrs", "verify", "catalog", "--repair"])
    assert repaired.exit_code == 0, repaired.output
    assert_read_models_agree()


def test_strict_mode_refuses_a_direct_write_and_keeps_nothing(app, db_session, shop, unguarded):
    app.config["CQRS_WRITE_GUARD"] = "strict"
    before = shop_snapshot(db_session)

    db_session.get(Product, 1).price_cents = 1
    with pytest.raises(UnguardedWriteError, match="products"):
        db_session.commit()
    db_session.rollback()

    assert unguarded == [{"tables": ["products"], "strict": True, "endpoint": NO_REQUEST}]
    assert shop_snapshot(db_session) == before
    assert_read_models_agree()


def test_strict_mode_lets_commands_write(app, client, db_session, shop, unguarded):
    app.config["CQRS_WRITE_GUARD"] = "strict"

    response = client.post("/api/products/1/restock", json={"quantity": 2})

    assert response.status_code == 200
    assert unguarded == []
    assert db_session.scalar(select(Stock.quantity).where(Stock.product_id == 1)) == 7
    assert_read_models_agree()


@legacy_writes
def test_strict_mode_refuses_a_legacy_write_endpoint(app, client, db_session, shop, unguarded):
    app.config["CQRS_WRITE_GUARD"] = "strict"
    before = shop_snapshot(db_session)

    response = client.post("/api/products/1/restock", json={"quantity": 3})

    # Refused on purpose, with a JSON answer naming the table: never a bare 500.
    assert response.status_code == 503
    error = response.get_json()["error"]
    assert error["code"] == "unguarded_write"
    assert "stock" in error["message"]
    assert [call["strict"] for call in unguarded] == [True]
    assert shop_snapshot(db_session) == before
    assert_read_models_agree()
