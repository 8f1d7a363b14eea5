"""Wrapping endpoints by name: stages, served-by, auth, errors, correlation ids."""

from __future__ import annotations

import re

import pytest
from flask import Flask, render_template_string
from flask.testing import FlaskClient

from cqrs_layer import CQRS, CommandRejected
from cqrs_layer.core.settings import SettingsError
from cqrs_layer.core.tables import outbox
from cqrs_layer.ops.context import toolkit_of
from cqrs_layer.testing.harness import GENEROUS_BUDGETS

from .helpers import MakeToyApp, change, write_flag_row
from .toyapp import (
    AUTH,
    Book,
    GetBook,
    Loan,
    book_shelf,
    committed_rows,
    count_rows,
    create_toy_app,
    db,
)

#: Every wrapped endpoint on its new path: writes on their commands, reads on the read model
#: (with a time budget no loaded machine reaches: a fallback to legacy would hide it).
NEW_PATHS = {
    "CQRS_DEFAULT_WRITE_STAGE": "command",
    "CQRS_DEFAULT_READ_STAGE": "complete",
    **GENEROUS_BUDGETS,
}


@pytest.fixture
def new_app(make_toy_app: MakeToyApp) -> Flask:
    return make_toy_app(**NEW_PATHS)


@pytest.fixture
def new_client(new_app: Flask) -> FlaskClient:
    return new_app.test_client()


def test_legacy_stage_serves_every_view_shape_unchanged(toy_client: FlaskClient) -> None:
    added = toy_client.post("/library/books", json={"title": "Dune", "copies": 2})
    assert (added.status_code, added.get_json()) == (201, {"id": 1, "title": "Dune", "copies": 2})
    assert added.headers["Location"] == "/library/books/1"
    assert added.headers["X-CQRS-Served-By"] == "legacy"

    got = toy_client.get("/library/books/1")  # a dict view
    assert got.get_json() == {"id": 1, "title": "Dune", "available": 2, "on_loan": 0}
    assert got.headers["X-CQRS-Served-By"] == "legacy"

    renamed = toy_client.put("/library/books/1/title", json={"title": "Dune II"})  # a Response
    assert renamed.get_json() == {"id": 1, "title": "Dune II", "copies": 2}
    assert renamed.headers["X-CQRS-Served-By"] == "legacy"
    assert count_rows(outbox) == 0  # legacy writes record no events


def test_command_and_read_model_stages_serve_the_same_answers(
    new_app: Flask, new_client: FlaskClient
) -> None:
    added = new_client.post("/library/books", json={"title": "Dune", "copies": 2})
    assert (added.status_code, added.get_json()) == (201, {"id": 1, "title": "Dune", "copies": 2})
    assert added.headers["Location"] == "/library/books/1"
    assert added.headers["X-CQRS-Served-By"] == "command"

    renamed = new_client.put("/library/books/1/title", json={"title": "Dune II"})
    assert (renamed.status_code, renamed.get_json()) == (
        200,
        {"id": 1, "title": "Dune II", "copies": 2},
    )
    assert renamed.headers["X-CQRS-Served-By"] == "command"

    from_read_model = new_client.get("/library/books/1")
    assert from_read_model.headers["X-CQRS-Served-By"] == "read-model"
    change(toolkit_of(new_app), "library.get_book", "legacy")  # switched back, no restart
    from_legacy = new_client.get("/library/books/1")
    assert from_legacy.headers["X-CQRS-Served-By"] == "legacy"
    assert (
        from_read_model.get_json()
        == from_legacy.get_json()
        == {
            "id": 1,
            "title": "Dune II",
            "available": 2,
            "on_loan": 0,
        }
    )
    assert [r["event_type"] for r in committed_rows(outbox)] == [
        "library.BookAdded",
        "library.BookRenamed",
    ]


def test_per_endpoint_stage_overrides_the_default(make_toy_app: MakeToyApp) -> None:
    app = make_toy_app(
        CQRS_DEFAULT_READ_STAGE="complete",
        CQRS_ENDPOINT_STAGES={"library.add_book": "command", "library.get_book": "legacy"},
    )
    client = app.test_client()
    assert (
        client.post("/library/books", json={"title": "A", "copies": 1}).headers["X-CQRS-Served-By"]
        == "command"
    )
    assert client.get("/library/books/1").headers["X-CQRS-Served-By"] == "legacy"


def test_rendered_template_view_on_the_query_path(new_app: Flask, new_client: FlaskClient) -> None:
    CQRS(db=db).query_endpoint(
        "library.book_card",
        build=lambda _, args: GetBook(book_id=args["book_id"]),
        respond=lambda book, _: render_template_string("<h1>{{ b.title }}</h1>", b=book),
        app=new_app,
    )
    new_client.post("/library/books", json={"title": "Emma", "copies": 1})
    card = new_client.get("/library/books/1/card")
    assert (card.status_code, card.get_data(as_text=True)) == (200, "<h1>Emma</h1>")
    assert card.mimetype == "text/html"
    assert card.headers["X-CQRS-Served-By"] == "read-model"


def test_auth_decorator_is_enforced_on_the_command_path(new_client: FlaskClient) -> None:
    new_client.post("/library/books", json={"title": "Dune", "copies": 2})

    refused = new_client.post("/library/books/1/loans", json={"borrower": "ann"})
    assert refused.status_code == 401
    assert refused.headers["X-CQRS-Served-By"] == "command"
    assert count_rows(Loan.__table__) == 0

    lent = new_client.post("/library/books/1/loans", json={"borrower": "ann"}, headers=AUTH)
    assert (lent.status_code, lent.get_json()) == (201, {"loan_id": 1, "book_id": 1})
    assert new_client.get("/library/books/1").get_json()["on_loan"] == 1


def test_validation_error_is_422_naming_each_field(new_client: FlaskClient) -> None:
    response = new_client.post("/library/books", json={"title": "", "copies": "2"})
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert (error["status"], error["code"]) == (422, "validation_error")
    assert [f["field"] for f in error["fields"]] == ["title", "copies"]
    assert error["fields"][1]["reason"] == "Input should be a valid integer"
    assert response.headers["X-CQRS-Served-By"] == "command"
    assert count_rows(Book.__table__) == 0


def test_domain_rule_violation_is_409_and_writes_nothing(new_client: FlaskClient) -> None:
    new_client.post("/library/books", json={"title": "Dune", "copies": 5})
    for borrower in ("ann", "ann"):
        new_client.post("/library/books/1/loans", json={"borrower": borrower}, headers=AUTH)
    # The third loan is flushed before the rule refuses it: the rollback must undo it.
    response = new_client.post("/library/books/1/loans", json={"borrower": "ann"}, headers=AUTH)
    assert response.status_code == 409
    assert response.get_json() == {
        "error": {
            "status": 409,
            "code": "conflict",
            "message": "borrower already holds too many books",
            "fields": [{"field": "borrower", "reason": "borrower already holds too many books"}],
        }
    }
    assert count_rows(Loan.__table__) == 2
    assert committed_rows(Book.__table__)[0]["copies"] == 3
    assert committed_rows(book_shelf)[0]["on_loan"] == 2
    assert count_rows(outbox) == 3


def test_not_found_is_404_on_both_paths(new_client: FlaskClient) -> None:
    lend = new_client.post("/library/books/7/loans", json={"borrower": "ann"}, headers=AUTH)
    assert lend.status_code == 404
    assert lend.get_json()["error"]["fields"] == [{"field": "book_id", "reason": "no book 7"}]
    read = new_client.get("/library/books/7")
    assert (read.status_code, read.get_json()["error"]["code"]) == (404, "not_found")
    assert read.headers["X-CQRS-Served-By"] == "read-model"


def test_host_exceptions_propagate_to_the_host_handler(new_client: FlaskClient) -> None:
    new_client.post("/library/books", json={"title": "Dune", "copies": 0})
    response = new_client.post("/library/books/1/loans", json={"borrower": "ann"}, headers=AUTH)
    assert (response.status_code, response.get_json()) == (
        409,
        {"library_error": "no copies of 'Dune' left"},
    )
    assert response.headers["X-CQRS-Served-By"] == "command"
    assert count_rows(Loan.__table__) == 0
    assert count_rows(outbox) == 1  # only BookAdded


def render_plain(error: CommandRejected) -> tuple[str, int]:
    return f"{error.code}: {error.message}", error.status


@pytest.mark.parametrize("renderer", [render_plain, f"{__name__}:render_plain"])
def test_error_renderer_is_configurable(make_toy_app: MakeToyApp, renderer: object) -> None:
    app = make_toy_app(CQRS_ERROR_RENDERER=renderer, **NEW_PATHS)
    response = app.test_client().post(
        "/library/books/3/loans", json={"borrower": "x"}, headers=AUTH
    )
    assert (response.status_code, response.get_data(as_text=True)) == (404, "not_found: no book 3")


def test_unknown_endpoint_names_similar_ones(toy_app: Flask) -> None:
    with pytest.raises(LookupError) as raised:
        CQRS(db=db).command_endpoint("library.add_bok", build=lambda r, a: None, app=toy_app)
    assert "'library.add_bok'" in str(raised.value)
    assert "did you mean library.add_book" in str(raised.value)


def test_wrapping_twice_or_with_a_bad_configured_stage_is_refused(
    make_toy_app: MakeToyApp,
) -> None:
    app = make_toy_app(CQRS_ENDPOINT_STAGES={"library.book_card": "command"})
    cqrs = CQRS(db=db)
    with pytest.raises(ValueError, match="already wrapped"):
        cqrs.command_endpoint("library.add_book", build=lambda r, a: None, app=app)
    with pytest.raises(
        ValueError,
        match=r"CQRS_ENDPOINT_STAGES\['library.book_card'\] is 'command'; "
        "a read endpoint takes one of legacy, shadow, live, complete",
    ):
        cqrs.query_endpoint("library.book_card", build=lambda r, a: None, app=app)
    assert "library.book_card" not in toolkit_of(app).registry.endpoints


def test_a_bad_default_stage_is_refused_at_start_up(database_url: str) -> None:
    """Was: an unknown default mode fell back to legacy at runtime. The settings are now
    validated when the app is built, so it never gets that far."""
    with pytest.raises(SettingsError, match=r"^CQRS_DEFAULT_WRITE_STAGE: .*'shadow'"):
        create_toy_app(
            {"SQLALCHEMY_DATABASE_URI": database_url, "CQRS_DEFAULT_WRITE_STAGE": "shadow"}
        )


def test_a_stored_stage_unknown_to_the_kind_falls_back_to_legacy(
    toy_app: Flask, toy_client: FlaskClient
) -> None:
    """A stage only another (newer, older) version knows, found in the flags table."""
    write_flag_row(db.engine, "library.add_book", "shadow", kind="write")
    toolkit_of(toy_app).flags.invalidate()
    response = toy_client.post("/library/books", json={"title": "A", "copies": 1})
    assert (response.status_code, response.headers["X-CQRS-Served-By"]) == (201, "legacy")


def test_wrapper_keeps_the_view_identity(toy_app: Flask) -> None:
    wrapped = toy_app.view_functions["library.get_book"]
    assert wrapped.__name__ == "get_book"
    assert getattr(wrapped, "__wrapped__").__module__ == "tests.toolkit.toyapp"  # noqa: B009


def test_correlation_id_is_made_up_echoed_and_stored(new_client: FlaskClient) -> None:
    made_up = new_client.post("/library/books", json={"title": "A", "copies": 1})
    assert re.fullmatch(r"[0-9a-f]{32}", made_up.headers["X-Request-ID"])
    sent = new_client.post(
        "/library/books", json={"title": "B", "copies": 1}, headers={"X-Request-ID": "req-42"}
    )
    assert sent.headers["X-Request-ID"] == "req-42"
    assert [r["correlation_id"] for r in committed_rows(outbox)] == [
        made_up.headers["X-Request-ID"],
        "req-42",
    ]
    # Every response of the app, wrapped or not, errors included; junk ids are replaced.
    unwrapped = new_client.get("/library/books", headers={"X-Request-ID": "x" * 65})
    assert re.fullmatch(r"[0-9a-f]{32}", unwrapped.headers["X-Request-ID"])
    assert "X-CQRS-Served-By" not in unwrapped.headers
    missing = new_client.get("/nowhere", headers={"X-Request-ID": "abc"})
    assert (missing.status_code, missing.headers["X-Request-ID"]) == (404, "abc")
