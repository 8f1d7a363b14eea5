"""The write guard: writes to read models' source tables outside a command."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client import REGISTRY
from sqlalchemy import delete, insert, update

from cqrs_layer import UnguardedWriteError, allow_unguarded_writes, signals

from .toyapp import AUTH, AddBook, Book, Loan, book_shelf, count_rows, db


def unguarded(table: str) -> float:
    return REGISTRY.get_sample_value("cqrs_unguarded_writes_total", {"table": table}) or 0.0


@pytest.fixture
def reports(toy_app: Flask) -> Any:
    received: list[dict[str, Any]] = []
    with signals.unguarded_write.connected_to(
        lambda sender, **kw: received.append(kw), sender=toy_app
    ):
        yield received


def test_guarded_tables_come_from_the_read_models(toy_app: Flask) -> None:
    assert toy_app.extensions["cqrs"].guard.guarded_tables == {"books", "loans"}


def test_warn_mode_reports_an_orm_write_outside_a_command_and_lets_it_through(
    toy_client: FlaskClient,
    toy_app: Flask,
    reports: list[dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    before = unguarded("books")
    with caplog.at_level(logging.WARNING, logger="cqrs_layer.guard"):
        response = toy_client.post("/library/books", json={"title": "Dune", "copies": 1})
    assert response.status_code == 201
    assert count_rows(Book.__table__) == 1
    assert unguarded("books") == before + 1  # once: the flush's own INSERT is not recounted
    assert reports == [{"tables": ["books"], "strict": False, "endpoint": "library.add_book"}]
    assert "books" in caplog.text and "library.add_book" in caplog.text


def test_the_guard_learns_which_endpoints_bypass_commands(
    toy_client: FlaskClient, toy_app: Flask
) -> None:
    guard = toy_app.extensions["cqrs"].guard
    toy_client.post("/library/books", json={"title": "Dune", "copies": 3})  # legacy
    toy_client.post("/library/books/1/loans", json={"borrower": "ann"}, headers=AUTH)  # legacy
    toy_client.put("/library/books/1/title", json={"title": "Dune II"})  # legacy, dirty object
    toy_app.config["CQRS_ENDPOINT_MODES"] = {"library.add_book": "command"}
    toy_client.post("/library/books", json={"title": "Emma", "copies": 1})  # through a command
    assert guard.writers() == {
        "library.add_book": {"books"},
        "library.lend_book": {"books", "loans"},
        "library.rename_book": {"books"},
    }
    assert guard.command_writers() == {"library.add_book": {"books"}}


def test_writes_inside_a_command_are_allowed(toy_app: Flask, reports: list[dict[str, Any]]) -> None:
    toy_app.config["CQRS_WRITE_GUARD"] = "strict"
    before = unguarded("books")
    toy_app.extensions["cqrs"].command_bus.dispatch(AddBook(title="Dune", copies=1))
    assert count_rows(Book.__table__) == 1
    assert (unguarded("books"), reports) == (before, [])


def test_strict_mode_refuses_an_orm_write(
    toy_client: FlaskClient, toy_app: Flask, reports: list[dict[str, Any]]
) -> None:
    toy_app.config["CQRS_WRITE_GUARD"] = "strict"
    response = toy_client.post("/library/books", json={"title": "Dune", "copies": 1})
    # Refused with a JSON 503 naming the table, never a bare 500.
    assert response.status_code == 503
    error = response.get_json()["error"]
    assert error["code"] == "unguarded_write"
    assert "write to books outside a command" in error["message"]
    assert count_rows(Book.__table__) == 0
    assert reports == [{"tables": ["books"], "strict": True, "endpoint": "library.add_book"}]


def test_core_statements_are_judged_too(toy_app: Flask, reports: list[dict[str, Any]]) -> None:
    before = unguarded("loans")
    with db.engine.begin() as connection:
        connection.execute(insert(Book).values(title="Dune", copies=1, version=1))
        connection.execute(insert(Loan.__table__).values(book_id=1, borrower="ann"))
        connection.execute(update(Loan.__table__).values(borrower="bob"))
    assert unguarded("loans") == before + 2
    assert [r["tables"] for r in reports] == [["books"], ["loans"], ["loans"]]
    assert {r["endpoint"] for r in reports} == {"<no request>"}

    toy_app.config["CQRS_WRITE_GUARD"] = "strict"
    with pytest.raises(UnguardedWriteError), db.engine.begin() as connection:
        connection.execute(delete(Loan.__table__))
    with pytest.raises(UnguardedWriteError):
        db.session.execute(update(Book).values(copies=5))  # ORM-enabled bulk UPDATE
    db.session.rollback()
    assert count_rows(Loan.__table__) == 1


def test_strict_orm_delete_is_refused(toy_app: Flask) -> None:
    toy_app.extensions["cqrs"].command_bus.dispatch(AddBook(title="Dune", copies=1))
    toy_app.config["CQRS_WRITE_GUARD"] = "strict"
    db.session.delete(db.session.get_one(Book, 1))
    with pytest.raises(UnguardedWriteError, match="books"):
        db.session.commit()
    db.session.rollback()
    assert count_rows(Book.__table__) == 1


def test_unguarded_tables_off_mode_and_explicit_allowance_pass_silently(
    toy_app: Flask, reports: list[dict[str, Any]]
) -> None:
    toy_app.config["CQRS_WRITE_GUARD"] = "strict"
    with db.engine.begin() as connection:  # a read-model table is not a source table
        connection.execute(insert(book_shelf).values(book_id=9, title="x", available=1, on_loan=0))
    with allow_unguarded_writes():
        db.session.add(Book(title="Seeded", copies=1))
        db.session.commit()
    toy_app.config["CQRS_WRITE_GUARD"] = "off"
    db.session.add(Book(title="Unwatched", copies=1))
    db.session.commit()
    assert count_rows(Book.__table__) == 2
    assert reports == []
    assert toy_app.extensions["cqrs"].guard.writers() == {}
