"""The JSON admin API under /cqrs/api/: off without a token, bearer auth, audited changes."""

from __future__ import annotations

import hmac
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from cqrs_layer import admin_api
from cqrs_layer.tables import flag_audit, flags

from .toyapp import committed_rows

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
READ = "library.get_book"
WRITE = "library.add_book"


@pytest.fixture
def api(toy_app: Flask, toy_client: FlaskClient) -> FlaskClient:
    toy_app.config["CQRS_ADMIN_TOKEN"] = TOKEN
    return toy_client


def put(client: FlaskClient, endpoint: str, body: Any, headers: dict[str, str] = AUTH) -> Any:
    return client.put(f"/cqrs/api/flags/{endpoint}", json=body, headers=headers)


def test_the_api_is_off_without_a_token(toy_client: FlaskClient) -> None:
    for response in (
        toy_client.get("/cqrs/api/flags", headers=AUTH),
        put(toy_client, READ, {"stage": "shadow", "reason": "x"}),
    ):
        assert response.status_code == 404
        assert response.get_json()["error"]["message"] == (
            "the admin API is off (set CQRS_ADMIN_TOKEN)"
        )
    assert committed_rows(flags) == []


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": "Bearer "},
    ],
)
def test_a_missing_or_wrong_token_is_401(api: FlaskClient, headers: dict[str, str]) -> None:
    response = put(api, READ, {"stage": "shadow", "reason": "x"}, headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="cqrs"'
    assert response.get_json() == {
        "error": {
            "status": 401,
            "code": "unauthorized",
            "message": "a valid bearer token is required",
            "fields": [{"field": "Authorization", "reason": "a valid bearer token is required"}],
        }
    }
    assert committed_rows(flags) == []


def test_every_named_token_is_compared_in_constant_time(
    toy_app: Flask, toy_client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    toy_app.config["CQRS_ADMIN_TOKEN"] = {"ops": "tok-ops", "ci": "tok-ci", "bot": "tok-bot"}
    compared: list[bytes] = []
    real_compare = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append(b)
        return real_compare(a, b)

    monkeypatch.setattr(admin_api.hmac, "compare_digest", spy)
    response = put(
        toy_client, READ, {"stage": "shadow", "reason": "x"}, {"Authorization": "Bearer tok-ops"}
    )
    assert response.status_code == 200
    assert sorted(compared) == [b"tok-bot", b"tok-ci", b"tok-ops"]  # no early exit
    audit = toy_client.get("/cqrs/api/audit", headers={"Authorization": "Bearer tok-ci"})
    assert [entry["actor"] for entry in audit.get_json()["items"]] == ["api:ops"]


def test_list_and_get_flags(api: FlaskClient) -> None:
    listed = api.get("/cqrs/api/flags", headers=AUTH)
    assert listed.status_code == 200
    assert [
        (f["endpoint"], f["kind"], f["stage"], f["source"]) for f in listed.get_json()["items"]
    ] == [
        ("library.add_book", "write", "legacy", "config"),
        ("library.get_book", "read", "legacy", "config"),
        ("library.lend_book", "write", "legacy", "config"),
        ("library.rename_book", "write", "legacy", "config"),
    ]
    one = api.get(f"/cqrs/api/flags/{READ}", headers=AUTH)
    assert one.get_json() == {
        "endpoint": READ,
        "kind": "read",
        "stage": "legacy",
        "percent": 100.0,
        "sample_rate": 1.0,
        "source": "config",
        "updated_at": None,
        "updated_by": None,
        "version": 0,
    }
    missing = api.get("/cqrs/api/flags/library.nope", headers=AUTH)
    assert missing.status_code == 404
    assert missing.get_json()["error"]["fields"][0]["field"] == "endpoint"


def test_a_change_is_applied_and_audited_with_the_token_name(api: FlaskClient) -> None:
    response = put(api, WRITE, {"stage": "command", "percent": 25, "reason": "canary"})
    assert response.status_code == 200
    body = response.get_json()
    assert {
        k: body[k] for k in ("endpoint", "stage", "percent", "source", "updated_by", "version")
    } == {
        "endpoint": WRITE,
        "stage": "command",
        "percent": 25.0,
        "source": "database",
        "updated_by": "api:admin",
        "version": 1,
    }
    look = {"stage": "shadow", "sample_rate": 0.1, "reason": "look"}
    assert api.post(f"/cqrs/api/flags/{READ}", json=look, headers=AUTH).status_code == 200
    audit = api.get("/cqrs/api/audit", headers=AUTH).get_json()["items"]
    keys = ("endpoint", "from_stage", "to_stage", "to_percent", "actor", "reason")
    assert [tuple(a[k] for k in keys) for a in audit] == [
        (READ, "legacy", "shadow", 100.0, "api:admin", "look"),
        (WRITE, "legacy", "command", 25.0, "api:admin", "canary"),
    ]
    only_write = api.get(f"/cqrs/api/audit?endpoint={WRITE}&limit=5", headers=AUTH).get_json()
    assert [a["endpoint"] for a in only_write["items"]] == [WRITE]
    assert len(api.get("/cqrs/api/audit?limit=1", headers=AUTH).get_json()["items"]) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"stage": "command", "reason": "x"}, "stage"),
        ({"stage": "shadow", "percent": 150, "reason": "x"}, "percent"),
        ({"stage": "shadow", "sample_rate": -0.5, "reason": "x"}, "sample_rate"),
        ({"stage": "shadow", "sample_rate": "0.5", "reason": "x"}, "sample_rate"),
        ({"stage": "shadow"}, "reason"),
        ({"stage": "shadow", "reason": ""}, "reason"),
        ({"stage": "shadow", "reason": "x", "force": "yes"}, "force"),
        ({"stage": "shadow", "reason": "x", "colour": "red"}, "colour"),
        ({"reason": "x"}, "stage"),
    ],
)
def test_invalid_changes_are_422_naming_the_field(
    api: FlaskClient, body: dict[str, Any], field: str
) -> None:
    response = put(api, READ, body)
    assert response.status_code == 422
    assert [f["field"] for f in response.get_json()["error"]["fields"]] == [field]
    assert committed_rows(flags) == [] and committed_rows(flag_audit) == []


def test_a_body_that_is_not_a_json_object_is_400(api: FlaskClient) -> None:
    for data in ("not json", "[1, 2]"):
        response = api.put(
            f"/cqrs/api/flags/{READ}", data=data, headers=AUTH, content_type="application/json"
        )
        assert response.status_code == 400
        assert response.get_json()["error"]["fields"] == [
            {"field": "body", "reason": "the body must be a JSON object"}
        ]


def test_unknown_endpoint_is_404(api: FlaskClient) -> None:
    response = put(api, "library.nope", {"stage": "shadow", "reason": "x"})
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "unknown_endpoint"


def test_a_gate_refusal_is_409_naming_the_blockers_and_force_overrides(api: FlaskClient) -> None:
    refused = put(api, READ, {"stage": "live", "percent": 5, "reason": "go"})
    assert refused.status_code == 409
    error = refused.get_json()["error"]
    assert error["code"] == "promotion_refused"
    assert [b["subject"] for b in error["blockers"]] == [
        "library.add_book",
        "library.lend_book",
        "library.rename_book",
    ]
    assert {f["field"] for f in error["fields"]} == {"stage"}
    assert "library.lend_book writes books, loans and is still on legacy" in error["message"]

    forced = put(api, READ, {"stage": "live", "percent": 5, "reason": "incident 7", "force": True})
    assert (forced.status_code, forced.get_json()["stage"]) == (200, "live")
    [entry] = api.get("/cqrs/api/audit", headers=AUTH).get_json()["items"]
    assert (entry["forced"], entry["reason"]) == (True, "incident 7")


def test_bad_audit_limit_is_422(api: FlaskClient) -> None:
    for limit in ("0", "abc", "5000"):
        response = api.get(f"/cqrs/api/audit?limit={limit}", headers=AUTH)
        assert response.status_code == 422
        assert response.get_json()["error"]["fields"][0]["field"] == "limit"
