"""/openapi.json describes exactly the API the app serves, and /healthz reports health."""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Flask

from legacy_app import create_app

SHOP_PACKAGE = "legacy_app."
IGNORED_METHODS = {"HEAD", "OPTIONS"}
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def is_shop_route(app: Flask, endpoint: str) -> bool:
    """Registered by the shop itself, not by the toolkit (whose admin API is not the contract)."""
    if endpoint == "static" or endpoint.endswith(".static"):
        return False
    if "." not in endpoint:
        return True
    blueprint = app.blueprints[endpoint.rsplit(".", 1)[0]]
    return blueprint.import_name.startswith(SHOP_PACKAGE)


def served_routes(app: Flask) -> set[tuple[str, str]]:
    """(path, method) for every shop rule in the url_map, in OpenAPI's path syntax."""
    routes = set()
    for rule in app.url_map.iter_rules():
        if not is_shop_route(app, rule.endpoint):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for method in rule.methods or ():
            if method not in IGNORED_METHODS:
                routes.add((path, method.lower()))
    return routes


def documented_routes(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (path, method)
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def all_refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in all_refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in all_refs(value)]
    return []


def fetch_document(client) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return json.loads(response.get_data(as_text=True))


def test_openapi_json_is_an_openapi_3_1_document(client):
    document = fetch_document(client)

    assert document["openapi"] == "3.1.0"
    assert document["info"]["title"] == "Demo shop API"
    assert document["info"]["version"] == "1.0.0"
    assert isinstance(document["paths"], dict)
    assert document["components"]["schemas"]["Error"]["required"] == ["error"]


def test_openapi_lists_exactly_the_routes_the_app_serves(app, client):
    document = fetch_document(client)

    assert documented_routes(document) == served_routes(app)


def test_route_derivation_sees_the_known_routes():
    # Guards the comparison above against comparing two empty or mangled sets.
    routes = served_routes(create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite://"}))

    assert ("/healthz", "get") in routes
    assert ("/openapi.json", "get") in routes
    assert not any("<" in path for path, _ in routes)
    assert not any(method in {"head", "options"} for _, method in routes)
    assert ("/api/orders/{order_id}/cancel", "post") in routes


def test_every_operation_is_complete_and_every_ref_resolves(client):
    document = fetch_document(client)
    schemas = document["components"]["schemas"]
    operation_ids = []

    for path, item in document["paths"].items():
        path_params = set(re.findall(r"{(\w+)}", path))
        for method, op in item.items():
            operation_ids.append(op["operationId"])
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == path_params, (path, method)
            assert op["responses"], (path, method)
            # (A 422 alone needs no body: a write's Idempotency-Key can be refused.)
            if method in {"post", "patch", "put"} and op["responses"].keys() & {"400", "413"}:
                assert "application/json" in op["requestBody"]["content"], (path, method)
            for status, response in op["responses"].items():
                if int(status) >= 400:
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}, (path, status)

    assert len(operation_ids) == len(set(operation_ids))
    for ref in all_refs(document):
        assert ref.startswith("#/components/schemas/")
        assert ref.removeprefix("#/components/schemas/") in schemas


def test_the_root_links_to_pages_that_answer(client):
    response = client.get("/")

    assert response.status_code == 200
    body = response.get_json()
    assert body["name"] == "Demo shop API"
    assert body["links"]["openapi"] == "/openapi.json"
    for name, link in body["links"].items():
        assert client.get(link).status_code == 200, name


def test_healthz_reports_ok_after_a_database_round_trip(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_healthz_is_503_json_when_the_database_is_unreachable(tmp_path):
    # A SQLite path inside a missing directory cannot be opened: the database is "down".
    app = create_app(
        {"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/missing/shop.db"}
    )

    response = app.test_client().get("/healthz")

    assert response.status_code == 503
    assert response.get_json() == {
        "error": {
            "status": 503,
            "code": "service_unavailable",
            "message": "database unreachable",
        }
    }
