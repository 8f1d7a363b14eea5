"""The write guard: writes to read models' source tables outside a command."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client import REGISTRY
from sqlalchemy import delete, insert, update

from cqrs_layer import allow_unguarded_writes, signals
from cqrs_layer.core.errors import UnguardedWriteError
from cqrs_layer.ops.context import toolkit_of

from .helpers import MakeToyApp, change
from .toyapp import AUTH, AddBook, Book, Loan, book_shelf, count_rows, db


def unguarded(table: str) -> float:
    return REGISTRY.get_sample_value("cqrs_unguarded_writes_total", {"table": table}) or 0.0


@contextmanager
def reports_of(app: Flask) -> Iterator[list[dict[str, Any]]]:
    received: list[dict[str, Any]] = []
    with signals.unguarded_write.connected_to(lambda sender, **kw: received.append(kw), sender=app):
        yield received


@pytest.fixture
def reports(toy_app: Flask) -> Iterator[list[dict[str, Any]]]:
    with reports_of(toy_app) as received:
        yield received


@pytest.fixture
def strict_app(make_toy_app: MakeToyApp) -> Flask:
    return make_toy_app(CQRS_WRITE_GUARD="strict")


@pytest.fixture
def strict_reports(strict_app: Flask) -> Iterator[list[dict[str, Any]]]:
    with reports_of(strict_app) as received:
        yield received


def test_the_guard_watches_what_read_models_without_capture_read(toy_app: Flask) -> None:
    """The shelf has no change capture installed here: a write to a column it reads is
    one it would never hear of; a write to one it does not read (a loan's borrower, a
    book's version) is not."""
    guard = toolkit_of(toy_app).guard
    with reports_of(toy_app) as seen:
        guard.check({"loans": frozenset({"borrower"}), "books": frozenset({"version"})})
        assert seen == []
        guard.check({"books": frozenset({"copies", "version"})})
        guard.check({"loans": None})  # a row added or deleted
    assert [report["tables"] for report in seen] == [["books"], ["loans"]]


def test_warn_mode_reports_an_orm_write_outside_a_command_and_lets_it_through(
    toy_client: FlaskClient,
    toy_app: Flask,
    reports: list[dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    before = unguarded("books")
    with caplog.at_level(logging.WARNING, logger="cqrs.guard"):
        response = toy_client.post("/library/books", json={"title": "Dune", "copies": 1})
    assert response.status_code == 201
    assert count_rows(Book.__table__) == 1
    assert unguarded("books") == before + 1  # once: the flush's own INSERT is not recounted
    assert reports == [{"tables": ["books"], "strict": False, "endpoint": "library.add_book"}]
    assert "books" in caplog.text and "library.add_book" in caplog.text


def test_the_guard_learns_which_endpoints_bypass_commands(
    toy_client: FlaskClient, toy_app: Flask
) -> None:
    guard = toolkit_of(toy_app).guard
    toy_client.post("/library/books", json={"title": "Dune", "copies": 3})  # legacy
    toy_client.post("/library/books/1/loans", json={"borrower": "ann"}, headers=AUTH)  # legacy
    toy_client.put("/library/books/1/title", json={"title": "Dune II"})  # legacy, dirty object
    change(toolkit_of(toy_app), "library.add_book", "command")
    toy_client.post("/library/books", json={"title": "Emma", "copies": 1})  # through a command
    assert guard.writers() == {
        "library.add_book": {"books"},
        "library.lend_book": {"books", "loans"},
        "library.rename_book": {"books"},
    }
    assert guard.command_writers() == {"library.add_book": {"books"}}


def test_writes_inside_a_command_are_allowed(
    strict_app: Flask, strict_reports: list[dict[str, Any]]
) -> None:
    before = unguarded("books")
    toolkit_of(strict_app).command_bus.dispatch(AddBook(title="Dune", copies=1))
    assert count_rows(Book.__table__) == 1
    assert (unguarded("books"), strict_reports) == (before, [])


def test_strict_mode_refuses_an_orm_write(
    strict_app: Flask, strict_reports: list[dict[str, Any]]
) -> None:
    response = strict_app.test_client().post("/library/books", json={"title": "Dune", "copies": 1})
    # Refused with a JSON 503 naming the table, never a bare 500.
    assert response.status_code == 503
    error = response.get_json()["error"]
    assert error["code"] == "unguarded_write"
    assert "write to books outside a command" in error["message"]
    assert count_rows(Book.__table__) == 0
    assert strict_reports == [{"tables": ["books"], "strict": True, "endpoint": "library.add_book"}]


def test_core_statements_are_judged_too(toy_app: Flask, reports: list[dict[str, Any]]) -> None:
    before = unguarded("loans")
    with db.engine.begin() as connection:
        connection.execute(insert(Book).values(title="Dune", copies=1, version=1))
        connection.execute(insert(Loan.__table__).values(book_id=1, borrower="ann"))
        connection.execute(update(Loan.__table__).values(borrower="bob"))  # not read
        connection.execute(update(Loan.__table__).values(book_id=1))
    assert unguarded("loans") == before + 2
    assert [r["tables"] for r in reports] == [["books"], ["loans"], ["loans"]]
    assert {r["endpoint"] for r in reports} == {"<no request>"}
    assert count_rows(Loan.__table__) == 1


def test_strict_mode_refuses_core_statements_and_orm_bulk_writes(
    strict_app: Flask, strict_reports: list[dict[str, Any]]
) -> None:
    with allow_unguarded_writes(), db.engine.begin() as connection:
        connection.execute(insert(Book).values(title="Dune", copies=1, version=1))
        connection.execute(insert(Loan.__table__).values(book_id=1, borrower="ann"))
    with pytest.raises(UnguardedWriteError), db.engine.begin() as connection:
        connection.execute(delete(Loan.__table__))
    with pytest.raises(UnguardedWriteError):
        db.session.execute(update(Book).values(copies=5))  # ORM-enabled bulk UPDATE
    db.session.rollback()
    assert count_rows(Loan.__table__) == 1
    assert [(r["tables"], r["strict"]) for r in strict_reports] == [
        (["loans"], True),
        (["books"], True),
    ]


def test_strict_orm_delete_is_refused(strict_app: Flask) -> None:
    toolkit_of(strict_app).command_bus.dispatch(AddBook(title="Dune", copies=1))
    db.session.delete(db.session.get_one(Book, 1))
    with pytest.raises(UnguardedWriteError, match="books"):
        db.session.commit()
    db.session.rollback()
    assert count_rows(Book.__table__) == 1


def test_unguarded_tables_and_explicit_allowance_pass_silently_in_strict_mode(
    strict_app: Flask, strict_reports: list[dict[str, Any]]
) -> None:
    with db.engine.begin() as connection:  # a read-model table is not a source table
        connection.execute(insert(book_shelf).values(book_id=9, title="x", available=1, on_loan=0))
    with allow_unguarded_writes():
        db.session.add(Book(title="Seeded", copies=1))
        db.session.commit()
    assert count_rows(Book.__table__) == 1
    assert strict_reports == []
    assert toolkit_of(strict_app).guard.writers() == {}


def test_off_mode_passes_silently(make_toy_app: MakeToyApp) -> None:
    app = make_toy_app(CQRS_WRITE_GUARD="off")
    before = unguarded("books")
    with reports_of(app) as reports:
        db.session.add(Book(title="Unwatched", copies=1))
        db.session.commit()
        response = app.test_client().post("/library/books", json={"title": "Dune", "copies": 1})
    assert response.status_code == 201
    assert count_rows(Book.__table__) == 2
    assert (reports, unguarded("books")) == ([], before)
    assert toolkit_of(app).guard.writers() == {}
