"""Optimistic concurrency over HTTP: ``ETag`` out, ``If-Match`` in, 412 when stale.

Products and customers carry a ``version``; their ETag is that version as a strong entity
tag (``"3"``). A write with an ``If-Match`` that names none of the current version answers
412 ``precondition_failed`` naming ``If-Match`` and changes nothing; ``If-Match: *`` and no
header write unconditionally, as before.
"""

from __future__ import annotations

import pytest

from ..factories import CategoryFactory, CustomerFactory, ProductFactory
from . import assert_error, shop_snapshot


@pytest.fixture
def shop(db_session):
    """Categories 1, 2; product 1 (stock 10) and customer 1, both at version 1."""
    kitchen = CategoryFactory(name="Kitchen")
    CategoryFactory(name="Garden")
    ProductFactory(sku="MUG", name="Mug", category=kitchen, stock__quantity=10)
    CustomerFactory(email="ann@example.com", name="Ann")
    db_session.commit()


def refused_as_stale(response) -> None:
    error = assert_error(response, 412, "precondition_failed", "If-Match")
    assert "reload" in error["message"]


# --- ETag on reads and on the writes that return the resource -------------------------------


@pytest.mark.parametrize("url", ["/api/products/1", "/api/customers/1"])
def test_reads_of_a_versioned_resource_carry_its_etag(client, shop, url):
    response = client.get(url)

    assert response.status_code == 200
    assert response.headers["ETag"] == '"1"'


@pytest.mark.parametrize("url", ["/api/products/99", "/api/customers/99"])
def test_errors_carry_no_etag(client, shop, url):
    response = client.get(url)

    assert response.status_code == 404
    assert "ETag" not in response.headers


def test_lists_carry_no_etag(client, shop):
    assert "ETag" not in client.get("/api/products").headers


def test_a_product_patch_answers_the_new_etag_and_reads_agree(client, shop):
    patched = client.patch("/api/products/1", json={"name": "Big Mug"})

    assert patched.status_code == 200
    assert patched.headers["ETag"] == '"2"'
    assert client.get("/api/products/1").headers["ETag"] == '"2"'


def test_a_customer_patch_answers_the_new_etag_and_reads_agree(client, shop):
    patched = client.patch("/api/customers/1", json={"name": "Anne"})

    assert patched.status_code == 200
    assert patched.headers["ETag"] == '"2"'
    assert client.get("/api/customers/1").headers["ETag"] == '"2"'


def test_created_resources_answer_their_first_etag(client, shop):
    product = client.post(
        "/api/products", json={"sku": "POT", "name": "Pot", "price_cents": 1, "category_id": 1}
    )
    customer = client.post("/api/customers", json={"email": "bo@example.com", "name": "Bo"})

    assert (product.status_code, product.headers["ETag"]) == (201, '"1"')
    assert (customer.status_code, customer.headers["ETag"]) == (201, '"1"')


def test_a_restock_answers_the_etag_it_leaves_unchanged(client, shop):
    # Stock is a live figure (orders move it too), not part of the versioned fields.
    response = client.post("/api/products/1/restock", json={"quantity": 2})

    assert response.status_code == 200
    assert response.headers["ETag"] == '"1"'


# --- If-Match -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "if_match", ['"1"', "*", '"7", "1"', None], ids=["current", "star", "list", "absent"]
)
def test_a_patch_whose_if_match_holds_applies(client, db_session, shop, if_match):
    headers = {"If-Match": if_match} if if_match is not None else {}

    response = client.patch("/api/products/1", json={"price_cents": 5}, headers=headers)

    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["price_cents"] == 5
    assert response.headers["ETag"] == '"2"'


@pytest.mark.parametrize(
    "if_match",
    ['"2"', 'W/"1"', "1", '"abc"', '""', '"1 "'],
    ids=["stale", "weak", "unquoted", "not-a-version", "empty-tag", "padded"],
)
def test_a_product_patch_whose_if_match_fails_is_412_and_changes_nothing(
    client, db_session, shop, if_match
):
    before = shop_snapshot(db_session)

    response = client.patch("/api/products/1", json={"name": "X"}, headers={"If-Match": if_match})

    refused_as_stale(response)
    assert shop_snapshot(db_session) == before


def test_a_stale_tag_after_someone_elses_write_is_412(client, db_session, shop):
    seen = client.get("/api/products/1").headers["ETag"]
    assert client.patch("/api/products/1", json={"name": "Theirs"}).status_code == 200
    before = shop_snapshot(db_session)

    response = client.patch("/api/products/1", json={"name": "Mine"}, headers={"If-Match": seen})

    refused_as_stale(response)
    assert shop_snapshot(db_session) == before
    assert client.get("/api/products/1").get_json()["name"] == "Theirs"


def test_a_product_delete_with_a_stale_if_match_is_412(client, db_session, shop):
    before = shop_snapshot(db_session)

    refused_as_stale(client.delete("/api/products/1", headers={"If-Match": '"2"'}))
    assert shop_snapshot(db_session) == before
    assert client.delete("/api/products/1", headers={"If-Match": '"1"'}).status_code == 204


def test_a_restock_with_a_stale_if_match_is_412(client, db_session, shop):
    before = shop_snapshot(db_session)

    response = client.post(
        "/api/products/1/restock", json={"quantity": 3}, headers={"If-Match": '"2"'}
    )

    refused_as_stale(response)
    assert shop_snapshot(db_session) == before
    restocked = client.post(
        "/api/products/1/restock", json={"quantity": 3}, headers={"If-Match": '"1"'}
    )
    assert restocked.get_json()["stock"] == 13


def test_a_customer_patch_with_a_stale_if_match_is_412(client, db_session, shop):
    before = shop_snapshot(db_session)

    response = client.patch("/api/customers/1", json={"name": "X"}, headers={"If-Match": '"2"'})

    refused_as_stale(response)
    assert shop_snapshot(db_session) == before


def test_a_customer_delete_with_a_stale_if_match_is_412(client, db_session, shop):
    before = shop_snapshot(db_session)

    refused_as_stale(client.delete("/api/customers/1", headers={"If-Match": '"9"'}))
    assert shop_snapshot(db_session) == before
    assert client.delete("/api/customers/1", headers={"If-Match": '"1"'}).status_code == 204


def test_an_unknown_id_is_404_whatever_if_match_says(client, db_session, shop):
    before = shop_snapshot(db_session)

    response = client.patch("/api/products/99", json={"name": "X"}, headers={"If-Match": '"1"'})

    assert_error(response, 404, "not_found", "product_id")
    assert shop_snapshot(db_session) == before


def test_an_invalid_body_is_422_before_if_match_is_considered(client, db_session, shop):
    before = shop_snapshot(db_session)

    response = client.patch("/api/products/1", json={"name": ""}, headers={"If-Match": '"2"'})

    assert_error(response, 422, "validation_error", "name")
    assert shop_snapshot(db_session) == before


def test_endpoints_of_unversioned_resources_ignore_if_match(client, shop):
    response = client.post("/api/categories", json={"name": "Tools"}, headers={"If-Match": '"9"'})

    assert response.status_code == 201
    assert "ETag" not in response.headers
