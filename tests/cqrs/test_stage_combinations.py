"""Every read endpoint at every stage combination the promotion gate allows answers
exactly what the legacy shop answers.

Combinations: reads ``legacy | shadow | live | complete`` x writes ``legacy | command``,
where ``live`` and ``complete`` need every write on ``command`` (the gate refuses them
otherwise: writes on legacy bypass the events, so the read models would drift).

Per allowed combination, on known data: the read endpoints are moved to their stage
through the flag store (so the gate judges each promotion), then representative requests
of the behaviour suite (every read endpoint, answers and refusals) are sent before and
after writes through the API. Each answer must equal the legacy shop's answer on the same
data at the same moment, say which path served it, and in ``shadow``/``live`` have been
compared, with a match (the toolkit's test harness, :mod:`cqrs_layer.testing`, drains the
pool per request). The promotions are judged by the gate with
``CQRS_PROMOTION_MIN_COMPARISONS=0``: its readiness rule is tested on its own
(tests/toolkit); here drift and the write endpoints are what it must judge.

Why a module and not the whole behaviour suite per stage: on two cores with both
backends (``-n 2``), ``tests/api`` took 85 s under ``shadow`` and 89 s under ``live``
(legacy 53 s, read-models 96 s in the same hour), and the whole suite 5 to 9 minutes
depending on the machine's load: both as default variants would add about three minutes,
up to five on a loaded machine, too close to the 15-minute budget. Both variants exist
(``pytest tests/api --cqrs-read-stage=shadow --cqrs-write-stage=command``, and ``live``,
run the suite unchanged under them,
840 passed each); this module keeps every stage combination in the default run for
about 15 s.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from cqrs_layer.core.tables import comparisons, flag_audit
from cqrs_layer.ops.context import toolkit_of
from cqrs_layer.rollout.gate import Blocker, PromotionRefused
from cqrs_layer.rollout.history import MATCH
from cqrs_layer.rollout.routing import SERVED_BY_HEADER
from cqrs_layer.schema import install_capture, remove_capture
from legacy_app.cqrs.endpoints import WRITE_ENDPOINTS
from legacy_app.cqrs.queries import READ_ENDPOINTS
from legacy_app.cqrs.read_models import catalog, catalog_view
from legacy_app.extensions import db
from legacy_app.models import OrderStatus

from ..factories import (
    CategoryFactory,
    CustomerFactory,
    OrderFactory,
    OrderLineFactory,
    ProductFactory,
    ReviewFactory,
)
from ..variants import LEGACY, Variant, comparison_check, read_model_sync

READS = [read.endpoint for read in READ_ENDPOINTS]
WRITES = sorted(write.endpoint for write in WRITE_ENDPOINTS)
CUSTOMER_ONLY_WRITERS = {"customers.create_customer", "customers.update_customer"}
SERVED_BY = {"legacy": "legacy", "shadow": "legacy", "live": "read-model", "complete": "read-model"}


@dataclass(frozen=True)
class Combination:
    reads: str
    writes: str
    #: Per-endpoint exceptions (``CQRS_ENDPOINT_STAGES``).
    exceptions: tuple[tuple[str, str], ...] = ()

    @property
    def name(self) -> str:
        unless = "".join(f"+{endpoint}-{stage}" for endpoint, stage in self.exceptions)
        return f"reads-{self.reads}+writes-{self.writes}{unless}"

    @property
    def variant(self) -> Variant:
        settings = {
            "CQRS_ENDPOINT_STAGES": dict(self.exceptions),
            "CQRS_PROMOTION_MIN_COMPARISONS": 0,
        }
        return Variant(self.name, self.reads, self.writes, settings)


# Every combination: with change capture installed for every read model, reads on the
# read models need no write endpoint moved first.
ALLOWED = [
    Combination(reads, writes)
    for reads in ("legacy", "shadow", "live", "complete")
    for writes in ("legacy", "command")
]


@pytest.fixture(params=ALLOWED, ids=lambda combination: combination.name)
def combination(request: pytest.FixtureRequest) -> Combination:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def app_variant(combination: Combination) -> Variant:
    return combination.variant


@pytest.fixture
def legacy_client(app: Flask, database_url: str) -> Iterator[FlaskClient]:
    """The legacy shop on the same database, every endpoint unwrapped (the flags in the
    database cannot move it): the truth every answer is checked against."""
    truth = LEGACY.build({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url})
    toolkit = toolkit_of(truth)
    for endpoint, wrapped in toolkit.router.wrapped.items():
        truth.view_functions[endpoint] = wrapped.legacy_view
    yield truth.test_client()
    toolkit.engine.dispose()


def days_ago(days: int, hour: int = 12) -> datetime:
    today = datetime.now(UTC).date() - timedelta(days=days)
    return datetime.combine(today, datetime.min.time(), UTC) + timedelta(hours=hour)


@pytest.fixture
def shop(app: Flask, db_session: Any) -> dict[str, int]:
    """Two categories, four products (one out of stock), three customers (one without
    orders), orders in every status inside and outside the report windows, reviews."""
    kitchen, garden = CategoryFactory(name="Kitchen"), CategoryFactory(name="Garden")
    mug = ProductFactory(sku="SKU-MUG", name="Mug", price_cents=1000, category=kitchen)
    spoon = ProductFactory(sku="SKU-SPOON", name="Spoon", price_cents=250, category=kitchen)
    rake = ProductFactory(sku="SKU-RAKE", name="Rake", price_cents=4000, category=garden)
    kettle = ProductFactory(sku="SKU-KETTLE", name="Kettle", price_cents=9999, category=kitchen)
    mug.stock.quantity, spoon.stock.quantity, rake.stock.quantity = 14, 3, 0
    ada, bob, cy = CustomerFactory(name="Ada"), CustomerFactory(name="Bob"), CustomerFactory()

    def order(customer: Any, days: int, status: OrderStatus, *lines: tuple[Any, int]) -> int:
        placed = OrderFactory(customer=customer, created_at=days_ago(days), status=status.value)
        for product, quantity in lines:
            OrderLineFactory(order=placed, product=product, quantity=quantity)
        return int(placed.id)

    paid = order(ada, 2, OrderStatus.PAID, (mug, 2), (spoon, 1))
    order(ada, 10, OrderStatus.SHIPPED, (kettle, 1))
    order(bob, 1, OrderStatus.CANCELLED, (mug, 5))
    order(bob, 40, OrderStatus.PLACED, (spoon, 4))
    for product, rating in ((mug, 5), (mug, 4), (kettle, 2)):
        ReviewFactory(product=product, rating=rating)
    db_session.commit()
    ids = {"kitchen": kitchen.id, "mug": mug.id, "spoon": spoon.id, "rake": rake.id}
    return {**ids, "kettle": kettle.id, "ada": ada.id, "bob": bob.id, "cy": cy.id, "paid": paid}


def read_paths(shop: dict[str, int]) -> list[tuple[str, str]]:
    """(endpoint, path): every read endpoint, its parameters, and its refusals."""
    mug, ada, bob, cy = shop["mug"], shop["ada"], shop["bob"], shop["cy"]
    return [
        ("products.list_products", "/api/products"),
        ("products.list_products", "/api/products?sort=popularity"),
        ("products.list_products", "/api/products?sort=rating"),
        ("products.list_products", "/api/products?sort=-price&in_stock=true"),
        ("products.list_products", f"/api/products?category={shop['kitchen']}&per_page=2&page=2"),
        ("products.list_products", "/api/products?q=mu"),
        ("products.list_products", "/api/products?sort=bogus"),
        ("products.get_product", f"/api/products/{mug}"),
        ("products.get_product", f"/api/products/{shop['rake']}"),
        ("products.get_product", "/api/products/999"),
        ("customers.customer_orders", f"/api/customers/{ada}/orders"),
        ("customers.customer_orders", f"/api/customers/{bob}/orders?per_page=1&page=2"),
        ("customers.customer_orders", "/api/customers/999/orders"),
        ("customers.customer_orders", f"/api/customers/{ada}/orders?page=0"),
        ("customers.customer_summary", f"/api/customers/{ada}/summary"),
        ("customers.customer_summary", f"/api/customers/{bob}/summary"),
        ("customers.customer_summary", f"/api/customers/{cy}/summary"),
        ("customers.customer_summary", "/api/customers/999/summary"),
        ("reports.top_products", "/api/reports/top-products"),
        ("reports.top_products", "/api/reports/top-products?days=7&limit=2"),
        ("reports.top_products", "/api/reports/top-products?days=0"),
        ("reports.daily_sales", "/api/reports/daily-sales"),
        ("reports.daily_sales", "/api/reports/daily-sales?days=365"),
        ("reports.daily_sales", "/api/reports/daily-sales?days=abc"),
        ("reports.low_stock", "/api/reports/low-stock"),
        ("reports.low_stock", "/api/reports/low-stock?threshold=3"),
        ("reports.low_stock", "/api/reports/low-stock?threshold=-1"),
    ]


def legacy_writers(blockers: list[Blocker]) -> list[str]:
    return [blocker.subject for blocker in blockers if blocker.kind == "legacy-writer"]


def promote(app: Flask, stage: str) -> None:
    """Every read endpoint legacy -> ``stage`` through the flag store: the gate judges it."""
    read_model_sync(app).sync()  # the factories' rows, as a backfill would
    toolkit = toolkit_of(app)
    for endpoint in READS:
        toolkit.changes.change(endpoint, "legacy", actor="test", reason="start from legacy")
        toolkit.changes.change(endpoint, stage, actor="test", reason=f"to {stage}")  # allowed
        flag = toolkit.flags.get(endpoint)
        # Back at legacy, the default, nothing needed recording.
        expected_source = "settings" if stage == "legacy" else "database"
        assert (flag.stage, flag.source) == (stage, expected_source)


def check_reads(
    client: FlaskClient,
    legacy_client: FlaskClient,
    paths: list[tuple[str, str]],
    served_by: str,
) -> dict[str, int]:
    """Each answer equals the legacy shop's; returns the statuses seen, by path."""
    statuses = {}
    for _endpoint, path in paths:
        answer, truth = client.get(path), legacy_client.get(path)
        assert (answer.status_code, answer.get_json()) == (truth.status_code, truth.get_json()), (
            path
        )
        assert answer.headers[SERVED_BY_HEADER] == served_by, path
        assert SERVED_BY_HEADER not in truth.headers, path
        statuses[path] = answer.status_code
    assert {endpoint for endpoint, _ in paths} == set(READS)
    return statuses


def write_through_api(client: FlaskClient, shop: dict[str, int], served_by: str) -> None:
    """Orders placed, paid and cancelled, a restock, a review, and a refused order."""

    def expect(status: int, response: Any) -> None:
        assert response.status_code == status, response.get_json()
        assert response.headers[SERVED_BY_HEADER] == served_by

    placed = client.post(
        "/api/orders",
        json={
            "customer_id": shop["bob"],
            "lines": [
                {"product_id": shop["mug"], "quantity": 1},
                {"product_id": shop["kettle"], "quantity": 2},
            ],
        },
    )
    expect(201, placed)
    expect(200, client.post(f"/api/orders/{placed.get_json()['id']}/pay"))
    expect(200, client.post(f"/api/orders/{shop['paid']}/cancel"))
    expect(200, client.post(f"/api/products/{shop['rake']}/restock", json={"quantity": 5}))
    review = {"rating": 3, "customer_id": shop["ada"]}
    expect(201, client.post(f"/api/products/{shop['spoon']}/reviews", json=review))
    twice = [{"product_id": shop["mug"], "quantity": 1}] * 2
    expect(422, client.post("/api/orders", json={"customer_id": shop["ada"], "lines": twice}))


def test_every_read_answers_like_legacy_before_and_after_writes(
    app, client, legacy_client, shop, combination
):
    promote(app, combination.reads)
    served_by = SERVED_BY[combination.reads]
    paths = read_paths(shop)

    before = check_reads(client, legacy_client, paths, served_by)
    write_through_api(client, shop, "command" if combination.writes == "command" else "legacy")
    after = check_reads(client, legacy_client, paths, served_by)

    assert list(before.values()) == list(after.values())
    assert sorted(set(before.values())) == [200, 404, 422]
    # Known values after the writes: Mug 14 - 1 (Bob's order) + 2 (Ada's cancelled order).
    stock = {
        name: client.get(f"/api/products/{shop[name]}").get_json()["stock"]
        for name in ("mug", "spoon", "rake", "kettle")
    }
    assert stock == {"mug": 15, "spoon": 4, "rake": 5, "kettle": 8}
    summary = client.get(f"/api/customers/{shop['bob']}/summary").get_json()
    # Bob: 4 spoons (40 days ago) + the paid order (1 mug, 2 kettles); the cancelled not.
    assert (summary["order_count"], summary["lifetime_value_cents"]) == (2, 1000 + 1000 + 19998)
    reads = 2 * len(paths) + 5

    with toolkit_of(app).engine.connect() as connection:
        outcomes = dict(
            connection.execute(
                select(comparisons.c.outcome, func.count()).group_by(comparisons.c.outcome)
            ).all()
        )
    compared = combination.reads in ("shadow", "live")
    assert outcomes == ({MATCH: reads} if compared else {})
    check = comparison_check(app)
    assert (check.compared if check is not None else 0) == (reads if compared else 0)


@pytest.fixture
def catalog_without_capture(app: Flask) -> Iterator[None]:
    """The catalog read model kept by its projections alone, for one test."""
    db.session.remove()  # its open transaction's locks would hold the triggers' DDL up
    with toolkit_of(app).engine.begin() as connection:
        remove_capture(connection, catalog)
    yield
    db.session.remove()
    with toolkit_of(app).engine.begin() as connection:
        install_capture(connection, catalog)


@pytest.mark.parametrize("combination", [Combination("legacy", "legacy")], ids=["writes-legacy"])
@pytest.mark.parametrize("stage", ["live", "complete"])
def test_with_capture_the_gate_lets_reads_go_while_writes_are_legacy(app, shop, stage):
    """Writers need not move first: they are listed, and block nothing."""
    toolkit = toolkit_of(app)
    promoted = toolkit.changes.change("products.get_product", stage, actor="test", reason="go")

    assert (promoted.changed, promoted.after.stage) == (True, stage)
    catalog_writers = [w for w in WRITES if w not in CUSTOMER_ONLY_WRITERS]
    assert sorted(toolkit.gate.writers_of(catalog.depends_on)) == catalog_writers


@pytest.mark.parametrize("combination", [Combination("legacy", "legacy")], ids=["writes-legacy"])
@pytest.mark.parametrize("stage", ["live", "complete"])
def test_without_capture_the_gate_refuses_while_writes_are_legacy(
    app, shop, catalog_without_capture, stage
):
    """A read model kept by projections alone would drift from every legacy write."""
    toolkit = toolkit_of(app)
    with pytest.raises(PromotionRefused) as refused:
        toolkit.changes.change("products.get_product", stage, actor="test", reason="try")

    assert refused.value.status == 409
    assert {b.kind for b in refused.value.blockers} == {"legacy-writer"}
    # Every write endpoint that writes a source table of the catalog (products, stock,
    # categories, reviews, orders, order_lines); creating or renaming a customer does not.
    catalog_writers = [w for w in WRITES if w not in CUSTOMER_ONLY_WRITERS]
    assert sorted(legacy_writers(refused.value.blockers)) == catalog_writers
    assert toolkit.flags.get("products.get_product").stage == "legacy"
    with toolkit.engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(flag_audit)) == 0


ONE_LEGACY_WRITER = Combination("legacy", "command", (("orders.place_order", "legacy"),))


@pytest.mark.parametrize("combination", [ONE_LEGACY_WRITER], ids=["one-legacy-writer"])
def test_gate_names_the_one_write_endpoint_still_on_legacy(app, shop, catalog_without_capture):
    toolkit = toolkit_of(app)
    with pytest.raises(PromotionRefused) as refused:
        toolkit.changes.change("products.get_product", "live", actor="test", reason="try")
    assert legacy_writers(refused.value.blockers) == ["orders.place_order"]
    assert "write endpoint orders.place_order" in refused.value.message
    assert "still on legacy" in refused.value.message

    forced = toolkit.changes.change(
        "products.get_product", "live", actor="test", reason="accepted risk", force=True
    ).after
    assert (forced.stage, forced.percent) == ("live", 100.0)
    (audit,) = toolkit.flags.history("products.get_product")
    assert (audit.from_stage, audit.to_stage, audit.forced, audit.reason) == (
        "legacy",
        "live",
        True,
        "accepted risk",
    )


@pytest.mark.parametrize("combination", [Combination("shadow", "command")], ids=["shadow"])
def test_the_harness_turns_a_mismatched_comparison_into_a_failure(app, client, shop):
    """What makes the checks above worth having: a read model that answers differently
    fails the request under test, naming the difference."""
    promote(app, "shadow")
    with toolkit_of(app).engine.begin() as connection:
        connection.execute(
            update(catalog_view).where(catalog_view.c.product_id == shop["mug"]).values(name="Mog")
        )

    response = client.get(f"/api/products/{shop['mug']}")

    assert response.status_code == 500
    message = response.get_json()["error"]["message"]
    assert "comparison mismatch" in message and "Mog" in message
    assert client.get(f"/api/products/{shop['spoon']}").status_code == 200  # still matches
