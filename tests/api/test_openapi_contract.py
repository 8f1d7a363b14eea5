"""/openapi.json says exactly what the server accepts and answers.

Probed from the served document itself: every bound it states is where the server's bound
is, every value it allows is accepted (fuzzed with hypothesis), every status a write can
answer is listed, and the ETag / If-Match contract is described where it applies.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ..factories import CategoryFactory, CustomerFactory, ProductFactory, ReviewFactory
from . import assert_error
from .schema_strategies import query_text, resolve, values

DOCS = Path(__file__).resolve().parents[2] / "docs" / "api.md"
WRITE_METHODS = {"post", "patch", "put", "delete"}
#: The writes of a versioned resource: they honour If-Match (and may answer 412).
CONDITIONAL_WRITES = {
    ("/api/products/{product_id}", "patch"),
    ("/api/products/{product_id}", "delete"),
    ("/api/products/{product_id}/restock", "post"),
    ("/api/customers/{customer_id}", "patch"),
    ("/api/customers/{customer_id}", "delete"),
}
#: The operations that answer a product or customer, so carry its ETag.
TAGGED_ANSWERS = {
    ("/api/products", "post", "201"),
    ("/api/products/{product_id}", "get", "200"),
    ("/api/products/{product_id}", "patch", "200"),
    ("/api/products/{product_id}/restock", "post", "200"),
    ("/api/customers", "post", "201"),
    ("/api/customers/{customer_id}", "get", "200"),
    ("/api/customers/{customer_id}", "patch", "200"),
}
FUZZ = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,  # the same draws on every run: a failure here reproduces
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def document(client) -> dict[str, Any]:
    return json.loads(client.get("/openapi.json").get_data(as_text=True))


@pytest.fixture
def shop(db_session):
    """Category 1; product 1 with a review; customer 1: every path id below exists."""
    kitchen = CategoryFactory(name="Kitchen")
    ReviewFactory(product=ProductFactory(sku="MUG", name="Mug", category=kitchen))
    CustomerFactory(email="ann@example.com")
    db_session.commit()


def operations(document):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def concrete(path: str) -> str:
    """The path with every id parameter set to 1 (which exists in ``shop``)."""
    return re.sub(r"{\w+}", "1", path)


def query_parameters(document):
    """(url, name, schema) of every query parameter of every GET operation."""
    for path, method, operation in operations(document):
        for parameter in operation.get("parameters", []):
            if method == "get" and parameter["in"] == "query":
                yield concrete(path), parameter["name"], resolve(document, parameter["schema"])


# --- the document's bounds are the server's ---------------------------------------------------


def test_every_query_integer_is_bounded_where_the_server_is(client, shop, document):
    probed = 0
    for url, name, schema in query_parameters(document):
        if schema.get("type") != "integer":
            continue
        low, high = schema["minimum"], schema["maximum"]
        for accepted in (low, high):
            response = client.get(url, query_string={name: accepted})
            assert response.status_code == 200, (url, name, accepted, response.get_json())
        for refused in (low - 1, high + 1):
            response = client.get(url, query_string={name: refused})
            assert_error(response, 422, "validation_error", name)
        probed += 1
    assert probed >= 10


def test_every_query_enum_value_is_accepted_and_nothing_else(client, shop, document):
    for url, name, schema in query_parameters(document):
        if "enum" not in schema:
            continue
        for value in schema["enum"]:
            assert client.get(url, query_string={name: value}).status_code == 200, (name, value)
        for other in ("", schema["enum"][0].upper(), "bogus"):
            assert_error(client.get(url, query_string={name: other}), 422, "validation_error", name)


def test_page_category_and_body_ids_have_the_servers_limits(document):
    schemas = document["components"]["schemas"]
    listing = document["paths"]["/api/products"]["get"]["parameters"]
    by_name = {p["name"]: p["schema"] for p in listing}

    assert by_name["page"]["maximum"] == 1_000_000
    assert (by_name["category"]["minimum"], by_name["category"]["maximum"]) == (1, 2_147_483_647)
    create = document["paths"]["/api/products"]["post"]["requestBody"]["content"]
    price = create["application/json"]["schema"]["properties"]["price_cents"]
    assert price["maximum"] == 2_147_483_647
    assert schemas["Error"]["properties"]["error"]["properties"]["status"]["type"] == "integer"


def text_schemas(document):
    """Every string schema of a request body, or of the ``q`` parameter."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") == "string" and "enum" not in node:
                found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for _path, _method, operation in operations(document):
        walk(operation.get("requestBody", {}))
        walk([p["schema"] for p in operation.get("parameters", []) if p["name"] == "q"])
    return found


def test_text_inputs_refuse_nul_in_the_document_as_the_server_does(document):
    schemas = text_schemas(document)

    assert len(schemas) >= 9
    for schema in schemas:
        assert re.fullmatch(schema["pattern"], "  a@b  "), schema
        assert not re.fullmatch(schema["pattern"], "  a@\x00b  "), schema


def test_required_text_refuses_blank_values_in_the_document_as_the_server_does(document):
    create = document["paths"]["/api/categories"]["post"]["requestBody"]["content"]
    name = create["application/json"]["schema"]["properties"]["name"]

    for blank in ("", "   ", "\t\u3000\n"):
        assert not re.fullmatch(name["pattern"], blank)
    assert re.fullmatch(name["pattern"], " " * 100 + "x" * 80 + " " * 100)
    assert not re.fullmatch(name["pattern"], "x" * 81)


# --- every status a write can answer is listed ----------------------------------------------


def test_every_write_lists_conflicts_timeouts_and_the_write_guard(document):
    for path, method, operation in operations(document):
        if method not in WRITE_METHODS:
            continue
        responses = operation["responses"]
        names = {(p["in"], p["name"]) for p in operation["parameters"]}
        assert {"409", "422", "503"} <= responses.keys(), (path, method)
        assert ("header", "Idempotency-Key") in names, (path, method)
        for status in ("409", "503"):  # idempotency_key_in_use; write_timeout
            assert "Retry-After" in responses[status]["headers"], (path, method, status)
        success = next(r for status, r in responses.items() if status.startswith("2"))
        assert "Idempotent-Replayed" in success["headers"], (path, method)
        if "requestBody" in operation:
            assert {"400", "413"} <= responses.keys(), (path, method)
        if (path, method) in CONDITIONAL_WRITES:
            assert "412" in responses, (path, method)
            assert ("header", "If-Match") in names, (path, method)
        else:
            assert "412" not in responses, (path, method)


def test_the_idempotency_key_the_document_allows_is_the_one_the_server_takes(
    client, shop, document
):
    create = document["paths"]["/api/categories"]["post"]
    [parameter] = [p for p in create["parameters"] if p["name"] == "Idempotency-Key"]
    pattern = parameter["schema"]["pattern"]
    keys = ["k", " spaced out ", "x" * 200, "\tx\t", "", "  ", "x" * 201, "caf\u00e9", "a\tb"]
    for number, key in enumerate(keys):
        response = client.post(
            "/api/categories", json={"name": f"C{number}"}, headers={"Idempotency-Key": key}
        )
        documented = re.fullmatch(pattern, key) is not None
        if documented:
            assert response.status_code == 201, (key, response.get_json())
        else:
            assert_error(response, 422, "validation_error", "Idempotency-Key")


def test_error_codes_are_listed_in_the_document_and_in_docs(document):
    codes = document["components"]["schemas"]["Error"]["properties"]["error"]["properties"]
    listed = set(codes["code"]["examples"])
    docs = DOCS.read_text()

    for code in (
        "concurrency_conflict",
        "unguarded_write",
        "precondition_failed",
        "payload_too_large",
        "write_timeout",
        "idempotency_key_in_use",
        "idempotency_response_lost",
    ):
        assert code in listed
        assert f"`{code}`" in docs


def test_answers_of_versioned_resources_declare_their_etag(document):
    tagged = set()
    for path, method, operation in operations(document):
        for status, response in operation["responses"].items():
            if "ETag" in response.get("headers", {}):
                tagged.add((path, method, status))

    assert tagged == TAGGED_ANSWERS


def test_docs_describe_etag_if_match_and_412():
    docs = DOCS.read_text()

    for phrase in ("ETag", "If-Match", "412", "MAX_CONTENT_LENGTH", "413"):
        assert phrase in docs


# --- fuzzed from the document: whatever it allows, the server accepts -------------------------


@FUZZ
@given(data=st.data())
def test_any_query_the_document_allows_is_answered(client, shop, document, data):
    by_url: dict[str, dict[str, Any]] = {}
    for url, name, schema in query_parameters(document):
        by_url.setdefault(url, {})[name] = schema
    url = data.draw(st.sampled_from(sorted(by_url)))
    chosen = data.draw(st.sets(st.sampled_from(sorted(by_url[url]))))
    query = {name: query_text(data.draw(values(document, by_url[url][name]))) for name in chosen}

    response = client.get(url, query_string=query)

    assert response.status_code == 200, (url, query, response.get_json())


def request_schema(document, path, method):
    content = document["paths"][path][method]["requestBody"]["content"]
    return resolve(document, content["application/json"]["schema"])


@FUZZ
@given(data=st.data())
def test_any_category_or_customer_the_document_allows_is_created(client, shop, document, data):
    path = data.draw(st.sampled_from(["/api/categories", "/api/customers"]))
    body = data.draw(values(document, request_schema(document, path, "post")))

    response = client.post(path, json=body)

    # 409: a duplicate name or email (drawn twice, or equal once stripped and lower-cased).
    assert response.status_code in (201, 409), (body, response.get_json())


@FUZZ
@given(data=st.data())
def test_any_product_change_the_document_allows_is_applied(client, shop, document, data):
    schema = request_schema(document, "/api/products/{product_id}", "patch")
    body = data.draw(values(document, schema))
    if "category_id" in body:
        body["category_id"] = 1  # the only category; others are refused for not existing

    response = client.patch("/api/products/1", json=body)

    assert response.status_code == 200, (body, response.get_json())
