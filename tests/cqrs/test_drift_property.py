"""Property: whatever sequence of writes the API accepts or refuses, with every write served
by its command, the projections keep every read model equal to its source (verify clean).

Each example starts from an empty shop, builds a small one through the API, then runs a
random program of writes: orders with random lines (unknown products, quantities beyond
the stock, the same product twice), payments, shipments and cancellations in any order
(invalid transitions included), restocks, reviews, product edits that move categories,
new customers, products and categories, deletions. Refused requests must be 4xx, never 500.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cqrs_layer.testing import read_model_drift
from legacy_app.cqrs.schema import cqrs_metadata
from legacy_app.extensions import db

from ..databases import empty_tables
from ..variants import COMMANDS

MAX_ID = 6  # ids up to here: some exist, some never will (unknown ids are part of the game)

ids = st.integers(min_value=1, max_value=MAX_ID)
line = st.tuples(ids, st.integers(min_value=1, max_value=4))

place_order = st.builds(
    lambda customer, lines: (
        "POST",
        "/api/orders",
        {"customer_id": customer, "lines": [{"product_id": p, "quantity": q} for p, q in lines]},
    ),
    ids,
    st.lists(line, min_size=1, max_size=3),
)
transition = st.builds(
    lambda order, action: ("POST", f"/api/orders/{order}/{action}", None),
    ids,
    st.sampled_from(["pay", "ship", "cancel"]),
)
restock = st.builds(
    lambda product, quantity: ("POST", f"/api/products/{product}/restock", {"quantity": quantity}),
    ids,
    st.integers(min_value=1, max_value=5),
)
review = st.builds(
    lambda product, rating, customer: (
        "POST",
        f"/api/products/{product}/reviews",
        {"rating": rating} if customer is None else {"rating": rating, "customer_id": customer},
    ),
    ids,
    st.integers(min_value=1, max_value=5),
    st.none() | ids,
)
product_changes = st.fixed_dictionaries(
    {},
    optional={
        "category_id": st.integers(min_value=1, max_value=4),
        "price_cents": st.integers(min_value=0, max_value=5000),
        "name": st.sampled_from(["Alpha", "beta", "Gamma"]),
        "sku": st.sampled_from(["S-1", "S-2", "S-9"]),
    },
)
update_product = st.builds(
    lambda product, changes: ("PATCH", f"/api/products/{product}", changes), ids, product_changes
)
new_customer = st.builds(
    lambda n: ("POST", "/api/customers", {"email": f"c{n}@example.com", "name": f"C{n}"}),
    st.integers(min_value=1, max_value=4),
)
update_customer = st.builds(
    lambda customer, name: ("PATCH", f"/api/customers/{customer}", {"name": name}),
    ids,
    st.sampled_from(["Ann", "Bob"]),
)
new_product = st.builds(
    lambda n, category, price, stock: (
        "POST",
        "/api/products",
        {
            "sku": f"NEW-{n}",
            "name": f"New {n}",
            "price_cents": price,
            "category_id": category,
            "stock": stock,
        },
    ),
    st.integers(min_value=1, max_value=3),
    st.integers(min_value=1, max_value=4),
    st.integers(min_value=0, max_value=3000),
    st.integers(min_value=0, max_value=5),
)
new_category = st.builds(
    lambda n: ("POST", "/api/categories", {"name": f"Cat {n}"}),
    st.integers(min_value=1, max_value=3),
)
delete = st.builds(
    lambda kind, ident: ("DELETE", f"/api/{kind}/{ident}", None),
    st.sampled_from(["products", "customers"]),
    ids,
)

write = st.one_of(
    place_order,
    place_order,
    transition,
    transition,
    restock,
    review,
    update_product,
    new_customer,
    update_customer,
    new_product,
    new_category,
    delete,
)

#: The small shop every example starts from, built through the API (so through commands).
START: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/api/categories", {"name": "Kitchen"}),
    ("POST", "/api/categories", {"name": "Garden"}),
    *(
        (
            "POST",
            "/api/products",
            {"sku": sku, "name": sku.title(), "price_cents": price, "category_id": cat, "stock": n},
        )
        for sku, price, cat, n in (("MUG", 1000, 1, 4), ("RAKE", 250, 2, 2), ("SPOON", 99, 1, 0))
    ),
    ("POST", "/api/customers", {"email": "ann@example.com", "name": "Ann"}),
    ("POST", "/api/customers", {"email": "bob@example.com", "name": "Bob"}),
]


@pytest.fixture
def app_variant():
    return COMMANDS


def empty_everything() -> None:
    db.session.rollback()
    empty_tables(db.engine, (db.metadata, *cqrs_metadata()))


@settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(program=st.lists(write, min_size=1, max_size=12))
def test_read_models_never_drift_from_the_source(app, client, program):
    empty_everything()
    for method, url, body in START:
        assert client.open(url, method=method, json=body).status_code == 201

    for method, url, body in program:
        response = client.open(url, method=method, json=body)
        assert response.status_code in {200, 201, 204, 404, 409, 422}, (
            method,
            url,
            body,
            response.get_json(),
        )
        assert response.headers["X-CQRS-Served-By"] == "command"

    drift = read_model_drift(app)
    assert drift == {}, (program, drift)
