"""Retries and races on the write path.

- ``Idempotency-Key`` on POST /api/orders, on both write paths (the command and the legacy
  view, which commits by itself): a retry (sequential or concurrent) answers the first
  response and places one order; a key reused for another body is refused; a first
  attempt that failed is not remembered; a first attempt whose response could not be
  stored after its commit is never run again.
- Optimistic concurrency (``version_id_col``): two requests that read the same version of
  a product or customer and both PATCH it: one wins, the other gets a 409 and nothing of
  it is kept, on the command path and on the legacy path alike.
"""

from __future__ import annotations

import threading
from datetime import datetime

import pytest
from sqlalchemy import func, select, update

from cqrs_layer.core.tables import idempotency_keys, outbox
from cqrs_layer.ops.context import toolkit_of
from cqrs_layer.write import idempotency
from legacy_app.extensions import db
from legacy_app.models import Customer, Order, Product, Stock
from legacy_app.services import catalog as catalog_services
from legacy_app.services import customers as customer_services

from ..factories import CustomerFactory, ProductFactory
from ..variants import COMMANDS, LEGACY

ORDER = {"customer_id": 1, "lines": [{"product_id": 1, "quantity": 2}]}
#: The legacy shop with a short CQRS_WRITE_TIMEOUT_MS, which also bounds how long a
#: duplicate waits for the first request's response: quick tests of the waiting.
LEGACY_QUICK = LEGACY.with_settings(CQRS_WRITE_TIMEOUT_MS=300)


@pytest.fixture
def app_variant(request):
    return getattr(request, "param", COMMANDS)


both_write_paths = pytest.mark.parametrize(
    "app_variant", [COMMANDS, LEGACY], indirect=True, ids=["commands", "legacy"]
)


@pytest.fixture
def shop(db_session):
    """Customer 1 ann@example.com; product 1 MUG (1000c, stock 5)."""
    CustomerFactory(email="ann@example.com", name="Ann")
    ProductFactory(sku="MUG", name="Mug", price_cents=1000, stock__quantity=5)
    db_session.commit()


def order_count(db_session):
    db_session.expire_all()
    return db_session.scalar(select(func.count()).select_from(Order))


def stock(db_session):
    return db_session.scalar(select(Stock.quantity).where(Stock.product_id == 1))


def outbox_types(db_session):
    return list(db_session.scalars(select(outbox.c.event_type).order_by(outbox.c.position)))


def run_together(app, calls):
    """Run each ``call(client)`` in its own thread, app context and session, at once."""
    barrier = threading.Barrier(len(calls), timeout=30)
    results = [None] * len(calls)

    def worker(index, call):
        with app.app_context():
            client = app.test_client()
            barrier.wait()
            results[index] = call(client)

    threads = [threading.Thread(target=worker, args=pair) for pair in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def expected_events(app_variant):
    """The command path records the order's event; the legacy view records none."""
    return ["OrderPlaced"] if app_variant.write_stage == "command" else []


# -- idempotency ---------------------------------------------------------------------------


@both_write_paths
def test_retries_answer_the_first_response_and_place_one_order(
    client, db_session, shop, app_variant
):
    headers = {"Idempotency-Key": "order-abc"}
    first, *retries = [client.post("/api/orders", json=ORDER, headers=headers) for _ in range(3)]

    assert [r.status_code for r in (first, *retries)] == [201, 201, 201]
    assert [r.get_json() for r in retries] == [first.get_json()] * 2
    assert first.get_json()["id"] == 1
    assert [r.headers["Idempotent-Replayed"] for r in retries] == ["true", "true"]
    assert "Idempotent-Replayed" not in first.headers
    assert order_count(db_session) == 1
    assert stock(db_session) == 3
    assert outbox_types(db_session) == expected_events(app_variant)


@both_write_paths
def test_another_key_places_another_order(client, db_session, shop):
    client.post("/api/orders", json=ORDER, headers={"Idempotency-Key": "one"})
    second = client.post("/api/orders", json=ORDER, headers={"Idempotency-Key": "two"})

    assert second.status_code == 201
    assert second.get_json()["id"] == 2
    assert order_count(db_session) == 2


@both_write_paths
def test_a_key_reused_for_another_request_is_refused(client, db_session, shop):
    client.post("/api/orders", json=ORDER, headers={"Idempotency-Key": "k"})
    other = {"customer_id": 1, "lines": [{"product_id": 1, "quantity": 1}]}

    response = client.post("/api/orders", json=other, headers={"Idempotency-Key": "k"})

    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "validation_error"
    assert [f["field"] for f in error["fields"]] == ["Idempotency-Key"]
    assert order_count(db_session) == 1
    assert stock(db_session) == 3


@both_write_paths
def test_a_failed_request_is_not_remembered_so_its_retry_can_succeed(client, db_session, shop):
    big = {"customer_id": 1, "lines": [{"product_id": 1, "quantity": 7}]}
    headers = {"Idempotency-Key": "big-order"}

    refused = client.post("/api/orders", json=big, headers=headers)
    assert refused.status_code == 409
    assert client.post("/api/products/1/restock", json={"quantity": 2}).status_code == 200
    retried = client.post("/api/orders", json=big, headers=headers)

    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried.headers
    assert order_count(db_session) == 1
    assert stock(db_session) == 0


@both_write_paths
def test_ten_concurrent_sends_of_one_key_place_one_order(app, db_session, shop):
    """Every answer is the first response (201, replayed) or 409 idempotency_key_in_use
    while the first is still running; never a 5xx, never a second order."""

    def post(client):
        response = client.post("/api/orders", json=ORDER, headers={"Idempotency-Key": "race"})
        return response.status_code, response.get_json(), dict(response.headers)

    results = run_together(app, [post] * 10)

    assert {status for status, _, _ in results} <= {201, 409}, results
    created = [(body, headers) for status, body, headers in results if status == 201]
    originals = [body for body, headers in created if "Idempotent-Replayed" not in headers]
    assert len(originals) == 1, results
    assert all(body == originals[0] for body, _ in created)
    for status, body, headers in results:
        if status == 409:
            assert body["error"]["code"] == "idempotency_key_in_use", body
            assert int(headers["Retry-After"]) >= 1
    assert order_count(db_session) == 1
    assert stock(db_session) == 3
    assert idempotency_rows() == [("orders.place_order", "race", 201)]


def idempotency_rows():
    with db.engine.connect() as connection:
        rows = connection.execute(
            select(
                idempotency_keys.c.endpoint, idempotency_keys.c.key, idempotency_keys.c.status_code
            )
        )
        return [tuple(row) for row in rows]


@pytest.mark.parametrize("app_variant", [LEGACY_QUICK], indirect=True, ids=["legacy"])
def test_a_response_lost_after_the_commit_never_runs_the_order_again(
    client, db_session, shop, monkeypatch
):
    """The legacy view commits by itself; its response is stored afterwards. If storing it
    fails (a crash in between), the key stays claimed by the committed order: a retry is
    answered 409, never served by running the view again."""

    def storage_fails(*_args, **_kwargs):
        raise RuntimeError("the server stopped here")

    monkeypatch.setattr(idempotency, "complete", storage_fails)
    headers = {"Idempotency-Key": "crashed"}
    first = client.post("/api/orders", json=ORDER, headers=headers)
    monkeypatch.undo()
    retry = client.post("/api/orders", json=ORDER, headers=headers)

    assert first.status_code == 201  # the order committed: the client is told so
    assert retry.status_code == 409
    error = retry.get_json()["error"]
    assert error["code"] == "idempotency_key_in_use"
    assert int(retry.headers["Retry-After"]) >= 1
    assert order_count(db_session) == 1
    assert stock(db_session) == 3

    # Long after (no request runs that long), the claim is known to have lost its response.
    with db.engine.begin() as connection:
        connection.execute(update(idempotency_keys).values(created_at=datetime(2000, 1, 1)))
    later = client.post("/api/orders", json=ORDER, headers=headers)

    assert later.status_code == 409
    error = later.get_json()["error"]
    assert error["code"] == "idempotency_response_lost"
    assert "Retry-After" not in later.headers
    assert order_count(db_session) == 1


@pytest.mark.parametrize("app_variant", [LEGACY], indirect=True, ids=["legacy"])
def test_a_key_used_on_the_legacy_path_holds_after_the_endpoint_moves_to_its_command(
    app, client, db_session, shop
):
    headers = {"Idempotency-Key": "across-stages"}
    first = client.post("/api/orders", json=ORDER, headers=headers)
    toolkit = toolkit_of(app)
    toolkit.changes.change(
        "orders.place_order", "command", actor="test", reason="rollout", force=True
    )
    toolkit.flags.invalidate()

    retry = client.post("/api/orders", json=ORDER, headers=headers)

    assert (first.headers["X-CQRS-Served-By"], retry.headers["X-CQRS-Served-By"]) == (
        "legacy",
        "command",
    )
    assert (retry.status_code, retry.headers["Idempotent-Replayed"]) == (201, "true")
    assert retry.get_json() == first.get_json()
    assert order_count(db_session) == 1


# -- optimistic concurrency ----------------------------------------------------------------


def hold_after_reading(monkeypatch, module, name, parties=2):
    """Make ``module.name`` (a loader the service calls first) wait, after reading the row,
    until every racing request has read it: all hold the same version when they write."""
    original = getattr(module, name)
    barrier = threading.Barrier(parties, timeout=30)

    def read_then_wait(*args, **kwargs):
        row = original(*args, **kwargs)
        barrier.wait()
        return row

    monkeypatch.setattr(module, name, read_then_wait)


def patcher(url, body):
    def call(client):
        response = client.patch(url, json=body)
        return response.status_code, response.get_json()

    return call


@both_write_paths
def test_concurrent_product_patches_one_wins_one_gets_409(app, db_session, shop, monkeypatch):
    hold_after_reading(monkeypatch, catalog_services, "_product_or_404")

    results = run_together(
        app,
        [
            patcher("/api/products/1", {"name": "Left", "price_cents": 111}),
            patcher("/api/products/1", {"name": "Right", "description": "from the right"}),
        ],
    )

    statuses = sorted(status for status, _ in results)
    assert statuses == [200, 409]
    winner = next(body for status, body in results if status == 200)
    loser = next(body for status, body in results if status == 409)
    assert loser["error"]["code"] == "concurrency_conflict"
    db_session.expire_all()
    product = db_session.get(Product, 1)
    # Exactly the winner's change: nothing of the loser's PATCH was written.
    assert (product.name, product.price_cents, product.description) == (
        winner["name"],
        winner["price_cents"],
        winner["description"],
    )
    assert winner["name"] in {"Left", "Right"}
    assert product.version == 2


@both_write_paths
def test_concurrent_customer_patches_one_wins_one_gets_409(app, db_session, shop, monkeypatch):
    hold_after_reading(monkeypatch, customer_services, "customer_or_404")

    results = run_together(
        app,
        [
            patcher("/api/customers/1", {"name": "Left"}),
            patcher("/api/customers/1", {"name": "Right"}),
        ],
    )

    assert sorted(status for status, _ in results) == [200, 409]
    winner = next(body for status, body in results if status == 200)
    db_session.expire_all()
    customer = db_session.get(Customer, 1)
    assert (customer.name, customer.version) == (winner["name"], 2)


@both_write_paths
def test_sequential_patches_both_apply(client, db_session, shop):
    assert client.patch("/api/products/1", json={"name": "One"}).status_code == 200
    assert client.patch("/api/products/1", json={"price_cents": 5}).status_code == 200

    db_session.expire_all()
    product = db_session.get(Product, 1)
    assert (product.name, product.price_cents, product.version) == ("One", 5, 3)
