"""The JSON admin API under /cqrs/api/: off without a token, bearer auth, audited changes."""

from __future__ import annotations

import hmac
import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from cqrs_layer.core.tables import flag_audit, flags
from cqrs_layer.ops import admin_api
from cqrs_layer.ops.context import toolkit_of

from .helpers import MakeToyApp, comparison
from .toyapp import committed_rows

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
READ = "library.get_book"
WRITE = "library.add_book"


@pytest.fixture
def api_app(make_toy_app: MakeToyApp) -> Flask:
    return make_toy_app(CQRS_ADMIN_TOKEN=TOKEN)


@pytest.fixture
def api(api_app: Flask) -> FlaskClient:
    return api_app.test_client()


def put(client: FlaskClient, endpoint: str, body: Any, headers: dict[str, str] = AUTH) -> Any:
    return client.put(f"/cqrs/api/flags/{endpoint}", json=body, headers=headers)


@pytest.mark.parametrize("token", [None, ""])
def test_the_api_is_off_without_a_token(make_toy_app: MakeToyApp, token: str | None) -> None:
    app = make_toy_app() if token is None else make_toy_app(CQRS_ADMIN_TOKEN=token)
    client = app.test_client()
    for response in (
        client.get("/cqrs/api/flags", headers=AUTH),
        client.get(f"/cqrs/api/report/{READ}", headers=AUTH),
        put(client, READ, {"stage": "shadow", "reason": "x"}),
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
    make_toy_app: MakeToyApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_toy_app(CQRS_ADMIN_TOKEN={"ops": "tok-ops", "ci": "tok-ci", "bot": "tok-bot"})
    toy_client = app.test_client()
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
        ("library.add_book", "write", "legacy", "settings"),
        ("library.get_book", "read", "legacy", "settings"),
        ("library.lend_book", "write", "legacy", "settings"),
        ("library.rename_book", "write", "legacy", "settings"),
    ]
    one = api.get(f"/cqrs/api/flags/{READ}", headers=AUTH)
    assert one.get_json() == {
        "endpoint": READ,
        "kind": "read",
        "stage": "legacy",
        "percent": 100.0,
        "sample_rate": 1.0,
        "source": "settings",
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
    answered = ("endpoint", "stage", "percent", "source", "updated_by", "version", "changed")
    assert {k: body[k] for k in answered} == {
        "endpoint": WRITE,
        "stage": "command",
        "percent": 25.0,
        "source": "database",
        "updated_by": "api:admin",
        "version": 1,
        "changed": True,
    }
    assert body.keys() == api.get(f"/cqrs/api/flags/{WRITE}", headers=AUTH).get_json().keys() | {
        "changed"
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
        ({"stage": "shadow", "reason": "   "}, "reason"),
        ({"stage": "read-model", "reason": "x"}, "stage"),
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


def test_a_body_nested_too_deeply_is_400_and_changes_nothing(api: FlaskClient) -> None:
    body = "[" * 1000 + "]" * 1000
    response = api.put(
        f"/cqrs/api/flags/{READ}", data=body, headers=AUTH, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["fields"] == [
        {"field": "body", "reason": "the body is nested too deeply"}
    ]
    assert committed_rows(flags) == [] and committed_rows(flag_audit) == []


def test_a_change_that_changes_nothing_answers_changed_false(api: FlaskClient) -> None:
    first = put(api, READ, {"stage": "shadow", "reason": "look"})
    again = put(api, READ, {"stage": "shadow", "reason": "look again"})
    assert (first.get_json()["changed"], again.status_code, again.get_json()["changed"]) == (
        True,
        200,
        False,
    )
    assert {k: v for k, v in again.get_json().items() if k != "changed"} == {
        k: v for k, v in first.get_json().items() if k != "changed"
    }
    unchanged = put(api, WRITE, {"stage": "legacy", "reason": "already"}).get_json()
    assert (unchanged["changed"], unchanged["source"], unchanged["version"]) == (
        False,
        "settings",
        0,
    )
    assert [a["reason"] for a in api.get("/cqrs/api/audit", headers=AUTH).get_json()["items"]] == [
        "look"
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
    # New: readiness blocks too (no comparisons yet), before the writers.
    assert [(b["kind"], b["subject"]) for b in error["blockers"]] == [
        ("readiness", READ),
        ("legacy-writer", "library.add_book"),
        ("legacy-writer", "library.lend_book"),
        ("legacy-writer", "library.rename_book"),
    ]
    assert {f["field"] for f in error["fields"]} == {"stage"}
    assert "library.get_book is not ready: 0 of the 50 comparisons it needs" in error["message"]
    assert "library.lend_book writes books, loans and is still on legacy" in error["message"]

    forced = put(api, READ, {"stage": "live", "percent": 5, "reason": "incident 7", "force": True})
    assert (forced.status_code, forced.get_json()["stage"]) == (200, "live")
    assert forced.get_json()["changed"] is True
    [entry] = api.get("/cqrs/api/audit", headers=AUTH).get_json()["items"]
    assert (entry["forced"], entry["reason"]) == (True, "incident 7")


def test_bad_audit_limit_is_422(api: FlaskClient) -> None:
    for limit in ("0", "abc", "5000"):
        response = api.get(f"/cqrs/api/audit?limit={limit}", headers=AUTH)
        assert response.status_code == 422
        assert response.get_json()["error"]["fields"][0]["field"] == "limit"


def test_the_report_of_a_read_endpoint(api_app: Flask, api: FlaskClient) -> None:
    history = toolkit_of(api_app).history
    history.record(comparison(READ, legacy_ms=10.0, new_ms=1.0))
    title = [{"path": "title", "kind": "changed", "legacy": "Dune", "new": "Dune!"}]
    history.record(comparison(READ, "mismatch", diff={"entries": title, "truncated": False}))
    response = api.get(f"/cqrs/api/report/{READ}", headers=AUTH)
    assert response.status_code == 200
    report = response.get_json()
    assert (report["endpoint"], report["stage"], report["samples"]) == (READ, "legacy", 2)
    assert report["outcomes"] == {"match": 1, "mismatch": 1}
    assert (report["ready_to_promote"], report["why"]) == (
        False,
        "2 of the 50 comparisons it needs; 1 mismatch(es) in the last 2",
    )
    assert [diff["entries"] for diff in report["last_diffs"]] == [title]
    # The same document as the report command's.
    printed = api_app.test_cli_runner().invoke(args=["cqrs", "report", "--json", READ])
    assert json.loads(printed.stdout) == [report]


def test_the_report_is_for_wrapped_read_endpoints_only(api: FlaskClient) -> None:
    write = api.get(f"/cqrs/api/report/{WRITE}", headers=AUTH)
    assert write.status_code == 404
    assert write.get_json()["error"]["message"] == (
        "library.add_book is a write endpoint: only reads are compared"
    )
    unknown = api.get("/cqrs/api/report/library.nope", headers=AUTH)
    assert (unknown.status_code, unknown.get_json()["error"]["code"]) == (404, "unknown_endpoint")
    assert api.get(f"/cqrs/api/report/{READ}").status_code == 401
