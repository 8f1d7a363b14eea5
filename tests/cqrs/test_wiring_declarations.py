"""The wiring's declarations must match what the code really does.

The promotion gate trusts them: a read endpoint is kept off ``live`` while a write
endpoint that writes its read models' source tables still bypasses the commands. A write
endpoint that writes a table it did not declare would let the gate promote too early.
"""

from __future__ import annotations

import pytest

from cqrs_layer.testing import endpoints_seen_writing, undeclared_writes
from legacy_app.cqrs.endpoints import WRITE_ENDPOINTS
from legacy_app.cqrs.queries import READ_ENDPOINTS
from legacy_app.cqrs.read_models import READ_MODELS

from ..variants import COMMANDS


@pytest.fixture
def app_variant():
    return COMMANDS


def test_every_declared_read_model_exists():
    known = {model.name for model in READ_MODELS}
    for read in READ_ENDPOINTS:
        assert read.read_models, read.endpoint
        assert set(read.read_models) <= known, read.endpoint


def _ok(response, status=200):
    assert response.status_code == status, response.get_json()
    assert response.headers["X-CQRS-Served-By"] == "command"
    return response.get_json()


def test_write_endpoints_write_only_the_tables_they_declare(app, client):
    category = _ok(client.post("/api/categories", json={"name": "Tools"}), 201)
    product = {"sku": "HAM", "name": "Hammer", "price_cents": 900, "category_id": category["id"]}
    hammer = _ok(client.post("/api/products", json={**product, "stock": 5}), 201)
    spare = _ok(client.post("/api/products", json={**product, "sku": "SPARE"}), 201)
    ann = _ok(client.post("/api/customers", json={"email": "ann@x.org", "name": "Ann"}), 201)
    bob = _ok(client.post("/api/customers", json={"email": "bob@x.org", "name": "Bob"}), 201)
    _ok(client.patch(f"/api/products/{hammer['id']}", json={"price_cents": 950}))
    _ok(client.patch(f"/api/customers/{ann['id']}", json={"name": "Ann B"}))
    _ok(client.post(f"/api/products/{hammer['id']}/restock", json={"quantity": 3}))
    review = {"rating": 5, "customer_id": bob["id"]}
    _ok(client.post(f"/api/products/{hammer['id']}/reviews", json=review), 201)
    line = {"product_id": hammer["id"], "quantity": 2}
    first = _ok(client.post("/api/orders", json={"customer_id": ann["id"], "lines": [line]}), 201)
    second = _ok(client.post("/api/orders", json={"customer_id": ann["id"], "lines": [line]}), 201)
    _ok(client.post(f"/api/orders/{first['id']}/pay"))
    _ok(client.post(f"/api/orders/{first['id']}/ship"))
    _ok(client.post(f"/api/orders/{second['id']}/cancel"))
    _ok(client.delete(f"/api/products/{spare['id']}"), 204)
    _ok(client.delete(f"/api/customers/{bob['id']}"), 204)

    # Every write endpoint ran and wrote, and only what it declares; the guard counts
    # columns some read model reads, and renaming a customer changes none of those.
    everyone = {write.endpoint for write in WRITE_ENDPOINTS}
    assert endpoints_seen_writing(app) == everyone - {"customers.update_customer"}
    assert undeclared_writes(app) == {}
