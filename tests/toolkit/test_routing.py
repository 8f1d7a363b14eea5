"""Wrapping endpoints by name: modes, served-by, auth, errors, correlation ids."""

from __future__ import annotations

import re

import pytest
from flask import Flask, render_template_string
from flask.testing import FlaskClient

from cqrs_layer import CQRS, CommandRejected
from cqrs_layer.tables import outbox

from .toyapp import AUTH, Book, GetBook, Loan, book_shelf, committed_rows, count_rows, db


def use_new_paths(app: Flask) -> None:
    app.config["CQRS_DEFAULT_WRITE_MODE"] = "command"
    app.config["CQRS_DEFAULT_READ_MODE"] = "read-model"


def test_legacy_mode_serves_every_view_shape_unchanged(toy_client: FlaskClient) -> None:
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


def test_command_and_read_model_modes_serve_the_same_answers(
    toy_app: Flask, toy_client: FlaskClient
) -> None:
    use_new_paths(toy_app)
    added = toy_client.post("/library/books", json={"title": "Dune", "copies": 2})
    assert (added.status_code, added.get_json()) == (201, {"id": 1, "title": "Dune", "copies": 2})
    assert added.headers["Location"] == "/library/books/1"
    assert added.headers["X-CQRS-Served-By"] == "command"

    renamed = toy_client.put("/library/books/1/title", json={"title": "Dune II"})
    assert (renamed.status_code, renamed.get_json()) == (
        200,
        {"id": 1, "title": "Dune II", "copies": 2},
    )
    assert renamed.headers["X-CQRS-Served-By"] == "command"

    from_read_model = toy_client.get("/library/books/1")
    assert from_read_model.headers["X-CQRS-Served-By"] == "read-model"
    toy_app.config["CQRS_DEFAULT_READ_MODE"] = "legacy"  # switched back, no restart
    from_legacy = toy_client.get("/library/books/1")
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


def test_per_endpoint_mode_overrides_the_default(toy_app: Flask, toy_client: FlaskClient) -> None:
    toy_app.config["CQRS_ENDPOINT_MODES"] = {"library.add_book": "command"}
    assert (
        toy_client.post("/library/books", json={"title": "A", "copies": 1}).headers[
            "X-CQRS-Served-By"
        ]
        == "command"
    )
    assert toy_client.get("/library/books/1").headers["X-CQRS-Served-By"] == "legacy"


def test_rendered_template_view_on_the_query_path(toy_app: Flask, toy_client: FlaskClient) -> None:
    CQRS(db=db).query_endpoint(
        "library.book_card",
        build=lambda _, args: GetBook(book_id=args["book_id"]),
        respond=lambda book, _: render_template_string("<h1>{{ b.title }}</h1>", b=book),
        app=toy_app,
    )
    use_new_paths(toy_app)
    toy_client.post("/library/books", json={"title": "Emma", "copies": 1})
    card = toy_client.get("/library/books/1/card")
    assert (card.status_code, card.get_data(as_text=True)) == (200, "<h1>Emma</h1>")
    assert card.mimetype == "text/html"
    assert card.headers["X-CQRS-Served-By"] == "read-model"


def test_auth_decorator_is_enforced_on_the_command_path(
    toy_app: Flask, toy_client: FlaskClient
) -> None:
    use_new_paths(toy_app)
    toy_client.post("/library/books", json={"title": "Dune", "copies": 2})

    refused = toy_client.post("/library/books/1/loans", json={"borrower": "ann"})
    assert refused.status_code == 401
    assert refused.headers["X-CQRS-Served-By"] == "command"
    assert count_rows(Loan.__table__) == 0

    lent = toy_client.post("/library/books/1/loans", json={"borrower": "ann"}, headers=AUTH)
    assert (lent.status_code, lent.get_json()) == (201, {"loan_id": 1, "book_id": 1})
    assert toy_client.get("/library/books/1").get_json()["on_loan"] == 1


def test_validation_error_is_422_naming_each_field(toy_app: Flask, toy_client: FlaskClient) -> None:
    use_new_paths(toy_app)
    response = toy_client.post("/library/books", json={"title": "", "copies": "2"})
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert (error["status"], error["code"]) == (422, "validation_error")
    assert [f["field"] for f in error["fields"]] == ["title", "copies"]
    assert error["fields"][1]["reason"] == "Input should be a valid integer"
    assert response.headers["X-CQRS-Served-By"] == "command"
    assert count_rows(Book.__table__) == 0


def test_domain_rule_violation_is_409_and_writes_nothing(
    toy_app: Flask, toy_client: FlaskClient
) -> None:
    use_new_paths(toy_app)
    toy_client.post("/library/books", json={"title": "Dune", "copies": 5})
    for borrower in ("ann", "ann"):
        toy_client.post("/library/books/1/loans", json={"borrower": borrower}, headers=AUTH)
    # The third loan is flushed before the rule refuses it: the rollback must undo it.
    response = toy_client.post("/library/books/1/loans", json={"borrower": "ann"}, headers=AUTH)
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


def test_not_found_is_404_on_both_paths(toy_app: Flask, toy_client: FlaskClient) -> None:
    use_new_paths(toy_app)
    lend = toy_client.post("/library/books/7/loans", json={"borrower": "ann"}, headers=AUTH)
    assert lend.status_code == 404
    assert lend.get_json()["error"]["fields"] == [{"field": "book_id", "reason": "no book 7"}]
    read = toy_client.get("/library/books/7")
    assert (read.status_code, read.get_json()["error"]["code"]) == (404, "not_found")
    assert read.headers["X-CQRS-Served-By"] == "read-model"


def test_host_exceptions_propagate_to_the_host_handler(
    toy_app: Flask, toy_client: FlaskClient
) -> None:
    use_new_paths(toy_app)
    toy_client.post("/library/books", json={"title": "Dune", "copies": 0})
    response = toy_client.post("/library/books/1/loans", json={"borrower": "ann"}, headers=AUTH)
    assert (response.status_code, response.get_json()) == (
        409,
        {"library_error": "no copies of 'Dune' left"},
    )
    assert response.headers["X-CQRS-Served-By"] == "command"
    assert count_rows(Loan.__table__) == 0
    assert count_rows(outbox) == 1  # only BookAdded


def test_error_renderer_is_configurable(toy_app: Flask, toy_client: FlaskClient) -> None:
    def plain(error: CommandRejected) -> tuple[str, int]:
        return f"{error.code}: {error.message}", error.status

    toy_app.config["CQRS_ERROR_RENDERER"] = plain
    use_new_paths(toy_app)
    response = toy_client.post("/library/books/3/loans", json={"borrower": "x"}, headers=AUTH)
    assert (response.status_code, response.get_data(as_text=True)) == (404, "not_found: no book 3")


def test_unknown_endpoint_names_similar_ones(toy_app: Flask) -> None:
    with pytest.raises(LookupError) as raised:
        CQRS(db=db).command_endpoint("library.add_bok", build=lambda r, a: None, app=toy_app)
    assert "'library.add_bok'" in str(raised.value)
    assert "did you mean library.add_book" in str(raised.value)


def test_wrapping_twice_or_with_a_bad_configured_mode_is_refused(toy_app: Flask) -> None:
    cqrs = CQRS(db=db)
    with pytest.raises(ValueError, match="already wrapped"):
        cqrs.command_endpoint("library.add_book", build=lambda r, a: None, app=toy_app)
    toy_app.config["CQRS_ENDPOINT_MODES"] = {"library.book_card": "command"}
    with pytest.raises(
        ValueError, match="a read endpoint takes one of legacy, shadow, live, complete"
    ):
        cqrs.query_endpoint("library.book_card", build=lambda r, a: None, app=toy_app)


def test_an_unknown_mode_at_runtime_falls_back_to_legacy(
    toy_app: Flask, toy_client: FlaskClient
) -> None:
    toy_app.config["CQRS_DEFAULT_WRITE_MODE"] = "shadow"
    response = toy_client.post("/library/books", json={"title": "A", "copies": 1})
    assert (response.status_code, response.headers["X-CQRS-Served-By"]) == (201, "legacy")


def test_wrapper_keeps_the_view_identity(toy_app: Flask) -> None:
    wrapped = toy_app.view_functions["library.get_book"]
    assert wrapped.__name__ == "get_book"
    assert wrapped.__wrapped__.__module__ == "tests.toolkit.toyapp"  # type: ignore[attr-defined]


def test_correlation_id_is_made_up_echoed_and_stored(
    toy_app: Flask, toy_client: FlaskClient
) -> None:
    use_new_paths(toy_app)
    made_up = toy_client.post("/library/books", json={"title": "A", "copies": 1})
    assert re.fullmatch(r"[0-9a-f]{32}", made_up.headers["X-Request-ID"])
    sent = toy_client.post(
        "/library/books", json={"title": "B", "copies": 1}, headers={"X-Request-ID": "req-42"}
    )
    assert sent.headers["X-Request-ID"] == "req-42"
    assert [r["correlation_id"] for r in committed_rows(outbox)] == [
        made_up.headers["X-Request-ID"],
        "req-42",
    ]
    # Every response of the app, wrapped or not, errors included; junk ids are replaced.
    unwrapped = toy_client.get("/library/books", headers={"X-Request-ID": "x" * 65})
    assert re.fullmatch(r"[0-9a-f]{32}", unwrapped.headers["X-Request-ID"])
    assert "X-CQRS-Served-By" not in unwrapped.headers
    missing = toy_client.get("/nowhere", headers={"X-Request-ID": "abc"})
    assert (missing.status_code, missing.headers["X-Request-ID"]) == (404, "abc")
