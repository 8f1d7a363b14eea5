"""Idempotency-Key on write endpoints, on both paths (the command, and the legacy view
that commits by itself): replay, mismatch, failures not stored, auth, races."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update

from cqrs_layer import allow_unguarded_writes
from cqrs_layer.core.tables import idempotency_keys, outbox
from cqrs_layer.rollout import writes

from .helpers import MakeToyApp
from .toyapp import AUTH, Book, Loan, committed_rows, count_rows, db


@pytest.fixture(params=["command", "legacy"])
def stage(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def toy_app(make_toy_app: MakeToyApp, stage: str) -> Flask:
    """Every write endpoint on the path under test."""
    return make_toy_app(CQRS_DEFAULT_WRITE_STAGE=stage)


def key(value: str, **headers: str) -> dict[str, str]:
    return {"Idempotency-Key": value, **headers}


def events_of(stage: str, *types: str) -> list[str]:
    """The events a write records: the command's; a legacy view records none."""
    return list(types) if stage == "command" else []


def test_a_retry_replays_the_first_response_without_running_again(
    toy_client: FlaskClient, stage: str
) -> None:
    body = {"title": "Dune", "copies": 2}
    first = toy_client.post("/library/books", json=body, headers=key("k1"))
    retry = toy_client.post("/library/books", json=body, headers=key("k1"))
    assert first.status_code == retry.status_code == 201
    assert first.get_json() == retry.get_json() == {"id": 1, "title": "Dune", "copies": 2}
    assert first.headers["Location"] == retry.headers["Location"] == "/library/books/1"
    assert retry.headers["Content-Type"] == "application/json"
    assert "Idempotent-Replayed" not in first.headers
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.headers["X-CQRS-Served-By"] == stage
    assert retry.headers["X-Request-ID"] != first.headers["X-Request-ID"]  # per delivery
    assert count_rows(Book.__table__) == 1
    assert count_rows(outbox) == len(events_of(stage, "library.BookAdded"))
    [stored] = committed_rows(idempotency_keys)
    assert (stored["endpoint"], stored["key"], stored["status_code"]) == (
        "library.add_book",
        "k1",
        201,
    )


def test_keys_are_per_endpoint_and_a_new_key_runs_again(toy_client: FlaskClient) -> None:
    toy_client.post("/library/books", json={"title": "Dune", "copies": 1}, headers=key("k"))
    lent = toy_client.post(
        "/library/books/1/loans", json={"borrower": "ann"}, headers=key("k", **AUTH)
    )
    assert (lent.status_code, "Idempotent-Replayed" in lent.headers) == (201, False)
    other = toy_client.post(
        "/library/books", json={"title": "Emma", "copies": 1}, headers=key("k2")
    )
    assert other.get_json()["id"] == 2


def test_the_same_key_with_another_request_is_422(toy_client: FlaskClient) -> None:
    toy_client.post("/library/books", json={"title": "Dune", "copies": 1}, headers=key("k1"))
    response = toy_client.post(
        "/library/books", json={"title": "Dune", "copies": 9}, headers=key("k1")
    )
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "validation_error"
    assert [f["field"] for f in error["fields"]] == ["Idempotency-Key"]
    assert committed_rows(Book.__table__)[0]["copies"] == 1


def test_a_malformed_key_is_422(toy_client: FlaskClient) -> None:
    response = toy_client.post(
        "/library/books", json={"title": "Dune", "copies": 1}, headers=key("x" * 201)
    )
    assert response.status_code == 422
    assert response.get_json()["error"]["fields"] == [
        {"field": "Idempotency-Key", "reason": "must be 1-200 characters"}
    ]
    assert count_rows(Book.__table__) == 0


@pytest.mark.parametrize("stage", ["command"])  # the legacy view validates nothing
def test_refusals_are_not_stored_so_a_corrected_retry_proceeds(toy_client: FlaskClient) -> None:
    toy_client.post("/library/books", json={"title": "Dune", "copies": 1})
    invalid = toy_client.post("/library/books", json={"title": "", "copies": 1}, headers=key("k"))
    assert invalid.status_code == 422
    conflict = toy_client.post(
        "/library/books", json={"title": "Dune", "copies": 1}, headers=key("k")
    )
    assert conflict.status_code == 409
    assert count_rows(idempotency_keys) == 0
    corrected = toy_client.post(
        "/library/books", json={"title": "Emma", "copies": 1}, headers=key("k")
    )
    assert (corrected.status_code, corrected.get_json()["id"]) == (201, 2)
    assert "Idempotent-Replayed" not in corrected.headers


def test_a_failed_first_attempt_is_not_stored_so_its_retry_proceeds(
    toy_app: Flask, toy_client: FlaskClient
) -> None:
    """The host's own error (a 409 from its error handler) after the view wrote: nothing
    of it is kept, the key included; once the cause is gone the same request goes through."""
    toy_client.post("/library/books", json={"title": "Dune", "copies": 0})
    body = {"borrower": "ann"}
    refused = toy_client.post("/library/books/1/loans", json=body, headers=key("l", **AUTH))
    assert (refused.status_code, refused.get_json()) == (
        409,
        {"library_error": "no copies of 'Dune' left"},
    )
    assert count_rows(idempotency_keys) == 0
    with toy_app.app_context(), allow_unguarded_writes():
        db.session.execute(update(Book).values(copies=1))
        db.session.commit()
    retried = toy_client.post("/library/books/1/loans", json=body, headers=key("l", **AUTH))
    assert (retried.status_code, "Idempotent-Replayed" in retried.headers) == (201, False)
    assert count_rows(Loan.__table__) == 1


def test_a_view_answering_a_response_object_is_replayed(toy_client: FlaskClient) -> None:
    toy_client.post("/library/books", json={"title": "Dune", "copies": 1})
    first = toy_client.put("/library/books/1/title", json={"title": "Emma"}, headers=key("r"))
    toy_client.put("/library/books/1/title", json={"title": "Dune"})  # renamed back
    retry = toy_client.put("/library/books/1/title", json={"title": "Emma"}, headers=key("r"))
    assert first.status_code == retry.status_code == 200
    assert first.get_json() == retry.get_json() == {"id": 1, "title": "Emma", "copies": 1}
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert committed_rows(Book.__table__)[0]["title"] == "Dune"  # not renamed again


def test_a_replay_is_only_given_past_the_endpoints_auth(toy_client: FlaskClient) -> None:
    """The key is checked inside the endpoint's declared decorators, on both paths: a
    request that does not pass them never sees another's stored response."""
    toy_client.post("/library/books", json={"title": "Dune", "copies": 2})
    body = {"borrower": "ann"}
    lent = toy_client.post("/library/books/1/loans", json=body, headers=key("l", **AUTH))
    stranger = toy_client.post("/library/books/1/loans", json=body, headers=key("l"))
    retry = toy_client.post("/library/books/1/loans", json=body, headers=key("l", **AUTH))
    assert (lent.status_code, stranger.status_code, retry.status_code) == (201, 401, 201)
    assert "loan_id" not in stranger.get_data(as_text=True)
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert count_rows(Loan.__table__) == 1


@pytest.mark.parametrize("stage", ["command"])
def test_two_racing_requests_with_one_key_write_once(
    toy_app: Flask, toy_client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """B starts after A checked the key and commits before A does: A's insert of the key
    hits the primary key, so A's whole command rolls back and A replays B's response."""
    toy_client.post("/library/books", json={"title": "Dune", "copies": 5})
    raced: list[Any] = []
    real_build = writes.built

    def build_then_let_b_win(build: Any, view_args: dict[str, Any], expected: Any) -> Any:
        if not raced:
            raced.append(True)
            with toy_app.app_context():  # B: its own app context, session and connection
                raced.append(
                    toy_app.test_client().post(
                        "/library/books/1/loans",
                        json={"borrower": "ann"},
                        headers=key("race", **AUTH),
                    )
                )
        return real_build(build, view_args, expected)

    # A's command is built after its key check: the moment B gets in.
    monkeypatch.setattr(writes, "built", build_then_let_b_win)
    a = toy_client.post(
        "/library/books/1/loans", json={"borrower": "ann"}, headers=key("race", **AUTH)
    )
    b = raced[1]
    assert (b.status_code, "Idempotent-Replayed" in b.headers) == (201, False)
    assert (a.status_code, a.headers["Idempotent-Replayed"]) == (201, "true")
    assert a.get_json() == b.get_json() == {"loan_id": 1, "book_id": 1}
    assert count_rows(Loan.__table__) == 1
    assert committed_rows(Book.__table__)[0]["copies"] == 4
    assert [r["event_type"] for r in committed_rows(outbox)] == [
        "library.BookAdded",
        "library.BookLent",
    ]
