"""Two writes with the same If-Match race: both pass the check, exactly one writes.

The If-Match check runs on the row as read inside the write transaction; a writer that
commits after that read is caught by the row's version (``version_id_col``) at UPDATE time,
so the loser gets a 409 ``concurrency_conflict`` and nothing of it is kept, on the command
path and on the legacy path alike.
"""

from __future__ import annotations

import pytest

from legacy_app.models import Product
from legacy_app.services import catalog as catalog_services

from ..api import shop_snapshot
from ..factories import ProductFactory
from ..variants import COMMANDS
from .test_idempotency_and_concurrency import both_write_paths, hold_after_reading, run_together


@pytest.fixture
def app_variant(request):
    return getattr(request, "param", COMMANDS)


@pytest.fixture
def shop(db_session):
    """Product 1, at version 1."""
    ProductFactory(sku="MUG", name="Mug")
    db_session.commit()


def conditional_patch(body):
    def call(client):
        response = client.patch("/api/products/1", json=body, headers={"If-Match": '"1"'})
        return response.status_code, response.get_json(), response.headers.get("ETag")

    return call


@both_write_paths
def test_racing_patches_with_the_same_if_match_one_wins(app, db_session, shop, monkeypatch):
    hold_after_reading(monkeypatch, catalog_services, "_product_or_404")

    results = run_together(
        app, [conditional_patch({"name": "Left"}), conditional_patch({"name": "Right"})]
    )

    assert sorted(status for status, _, _ in results) == [200, 409]
    winner = next(result for result in results if result[0] == 200)
    loser = next(result for result in results if result[0] == 409)
    assert winner[2] == '"2"'
    assert loser[1]["error"]["code"] == "concurrency_conflict"
    db_session.expire_all()
    product = db_session.get(Product, 1)
    assert (product.name, product.version) == (winner[1]["name"], 2)


@both_write_paths
def test_a_conditional_patch_after_the_race_is_refused_as_stale(client, db_session, shop):
    assert client.patch("/api/products/1", json={"name": "First"}).status_code == 200
    before = shop_snapshot(db_session)

    response = client.patch("/api/products/1", json={"name": "Second"}, headers={"If-Match": '"1"'})

    assert response.status_code == 412
    assert response.get_json()["error"]["fields"] == [
        {"field": "If-Match", "reason": response.get_json()["error"]["message"]}
    ]
    assert shop_snapshot(db_session) == before
