"""Live is never stale and a comparison never blames a correct read model, on the toy app
with change capture installed for its shelf:

- a write the app's session makes is recomputed before it commits;
- a write made outside the app (a plain connection, no session) leaves its keys pending,
  and while they are, a live read is served by legacy (a ``stale`` fallback, not an
  error), the app catches up in the background, and the read model serves again;
- a write landing between a served answer and its comparison is no mismatch
  (``changed``); a wrong read model still is;
- an ``abort(404)`` on the new path is an answer, compared with legacy's, not a failure;
- a broken read model never fails a write, not even a command's projection.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask, abort
from flask.testing import FlaskClient
from sqlalchemy import Connection, func, select, update

from cqrs_layer.core.tables import changes
from cqrs_layer.ops.context import toolkit_of
from cqrs_layer.rollout.comparisons import Comparisons
from cqrs_layer.schema import install_capture, remove_capture
from cqrs_layer.testing import assert_read_models_exact
from cqrs_layer.testing.harness import GENEROUS_BUDGETS

from .helpers import MakeToyApp, change, make_ready
from .test_shadow import ENDPOINT, history, swap_handler
from .toyapp import AUTH, Book, GetBook, book_shelf, db, get_book_from_shelf, shelf_model


@pytest.fixture
def captured(toy_app: Flask) -> Iterator[None]:
    with db.engine.begin() as connection:
        install_capture(connection, shelf_model)
    yield
    db.session.remove()  # its transaction's locks would hold the triggers' removal up
    with db.engine.begin() as connection:
        remove_capture(connection, shelf_model)


def app_at(make_toy_app: MakeToyApp, stage: str, **config: Any) -> tuple[Flask, FlaskClient]:
    """Writes on their commands, the read endpoint at ``stage``, Dune added."""
    app = make_toy_app(
        CQRS_DEFAULT_WRITE_STAGE="command",
        CQRS_ENDPOINT_STAGES={ENDPOINT: stage},
        **{**GENEROUS_BUDGETS, **config},
    )
    client = app.test_client()
    assert client.post("/library/books", json={"title": "Dune", "copies": 2}).status_code == 201
    return app, client


def pending() -> int:
    with db.engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(changes)) or 0)


def test_a_write_by_the_apps_session_is_recomputed_before_it_commits(
    toy_app: Flask, captured: None
) -> None:
    db.session.add(Book(title="Emma", copies=3))
    db.session.commit()
    book = db.session.scalar(select(Book).where(Book.title == "Emma"))
    assert book is not None
    book.copies = 1
    db.session.commit()

    assert pending() == 0
    assert_read_models_exact(toy_app)


def test_a_live_read_with_changes_pending_is_served_by_legacy_until_caught_up(
    make_toy_app: MakeToyApp, toy_app: Flask, captured: None
) -> None:
    app, client = app_at(make_toy_app, "live")
    with db.engine.begin() as connection:  # a writer outside the app's session
        connection.execute(update(Book.__table__).values(copies=9))
    assert pending() == 1

    stale = client.get("/library/books/1")

    assert stale.headers["X-CQRS-Served-By"] == "legacy"
    assert stale.get_json()["available"] == 9  # the truth, not the read model's 2
    assert toolkit_of(app).comparisons.drain(10)  # the background catch-up ran
    assert [row["outcome"] for row in history()] == ["stale"]
    assert (history()[0]["new_error"], history()[0]["legacy_status"]) == (None, 200)
    assert pending() == 0
    fresh = client.get("/library/books/1")
    assert fresh.headers["X-CQRS-Served-By"] == "read-model"
    assert fresh.get_json()["available"] == 9


def test_with_refresh_in_writes_off_a_write_only_records_and_reads_catch_up(
    make_toy_app: MakeToyApp, toy_app: Flask, captured: None
) -> None:
    app, client = app_at(make_toy_app, "live", CQRS_REFRESH_IN_WRITES=False)
    with app.app_context():
        book = db.session.scalar(select(Book).where(Book.title == "Dune"))
        assert book is not None
        book.copies = 5
        db.session.commit()
    assert pending() == 1  # committed without recomputing the shelf

    stale = client.get("/library/books/1")

    assert (stale.headers["X-CQRS-Served-By"], stale.get_json()["available"]) == ("legacy", 5)
    assert toolkit_of(app).comparisons.drain(10)
    assert pending() == 0
    fresh = client.get("/library/books/1")
    assert (fresh.headers["X-CQRS-Served-By"], fresh.get_json()["available"]) == ("read-model", 5)


def test_stale_fallbacks_are_no_errors_of_the_read_model(
    make_toy_app: MakeToyApp, toy_app: Flask, captured: None
) -> None:
    """A run of stale reads never demotes the endpoint nor counts against its readiness."""
    app, client = app_at(make_toy_app, "live", CQRS_DEMOTION_MIN_COMPARISONS=1)
    toolkit = toolkit_of(app)
    make_ready(toolkit, ENDPOINT)
    change(toolkit, ENDPOINT, "live", reason="ready")
    for copies in range(3):
        with db.engine.begin() as connection:
            connection.execute(update(Book.__table__).values(copies=copies))
        assert client.get("/library/books/1").headers["X-CQRS-Served-By"] == "legacy"
        assert toolkit.comparisons.drain(10)
    assert toolkit.flags.get(ENDPOINT).stage == "live"
    window = toolkit.history.window(ENDPOINT, 50)
    assert (window.new_errors, window.mismatches) == (0, 0)


class HeldComparison:
    """Holds the comparison pool's jobs until the test lets them run."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.release = threading.Event()
        original = Comparisons.run

        def held(comparisons: Comparisons, comparison: Any) -> None:
            self.release.wait(10)
            original(comparisons, comparison)

        monkeypatch.setattr(Comparisons, "run", held)


def test_a_write_between_the_answer_and_its_comparison_is_no_mismatch(
    make_toy_app: MakeToyApp, toy_app: Flask, captured: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, client = app_at(make_toy_app, "shadow")
    held = HeldComparison(monkeypatch)

    served = client.get("/library/books/1")  # legacy's answer: 2 available
    lent = client.post("/library/books/1/loans", json={"borrower": "ann"}, headers=AUTH)
    assert (served.get_json()["available"], lent.status_code) == (2, 201)
    held.release.set()

    assert toolkit_of(app).comparisons.drain(10)
    assert [row["outcome"] for row in history()] == ["changed"]


def test_a_wrong_read_model_is_still_a_mismatch(
    make_toy_app: MakeToyApp, toy_app: Flask, captured: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, client = app_at(make_toy_app, "shadow")

    def off_by_one(query: GetBook, connection: Connection) -> Any:
        answer = get_book_from_shelf(query, connection)
        return {**answer, "available": answer["available"] + 1}

    swap_handler(monkeypatch, app, off_by_one)
    client.get("/library/books/1")

    assert toolkit_of(app).comparisons.drain(10)
    [row] = history()
    assert row["outcome"] == "mismatch"
    assert row["diff"]["entries"] == [
        {"path": "available", "kind": "changed", "legacy": 2, "new": 3}
    ]


def test_an_abort_on_the_new_path_is_an_answer_compared_with_legacy(
    make_toy_app: MakeToyApp, toy_app: Flask, captured: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, client = app_at(make_toy_app, "live", CQRS_PROMOTION_MIN_COMPARISONS=0)

    def missing_is_404(query: GetBook, connection: Connection) -> Any:
        return get_book_from_shelf(query, connection) or abort(404)

    swap_handler(monkeypatch, app, missing_is_404)
    response = client.get("/library/books/999")

    assert (response.status_code, response.headers["X-CQRS-Served-By"]) == (404, "read-model")
    assert toolkit_of(app).comparisons.drain(10)
    [row] = history()
    assert (row["outcome"], row["legacy_status"], row["new_status"]) == ("match", 404, 404)


def test_a_broken_read_model_never_fails_a_write(
    make_toy_app: MakeToyApp, toy_app: Flask, captured: None
) -> None:
    """The shelf's table renamed away: the command still commits (its projection rolled
    back to a savepoint), the key stays pending, reads fall back; once the table is back,
    a refresh makes it exact."""
    app, client = app_at(make_toy_app, "live", CQRS_PROMOTION_MIN_COMPARISONS=0)
    with db.engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE book_shelf RENAME TO book_shelf_away")
    try:
        lent = client.post("/library/books/1/loans", json={"borrower": "ann"}, headers=AUTH)
        renamed = client.put("/library/books/1/title", json={"title": "Dune II"})
        read = client.get("/library/books/1")
    finally:
        with db.engine.begin() as connection:
            connection.exec_driver_sql("ALTER TABLE book_shelf_away RENAME TO book_shelf")

    assert (lent.status_code, renamed.status_code) == (201, 200)
    assert (read.status_code, read.headers["X-CQRS-Served-By"]) == (200, "legacy")
    assert read.get_json() == {"id": 1, "title": "Dune II", "available": 1, "on_loan": 1}
    assert toolkit_of(app).comparisons.drain(10)  # the catch-up, once the table is back
    result = app.test_cli_runner().invoke(args=["cqrs", "refresh"])
    assert result.exit_code == 0, result.output
    assert pending() == 0
    assert_read_models_exact(app)
    with db.engine.connect() as connection:
        assert connection.execute(select(book_shelf.c.title)).scalar_one() == "Dune II"


def test_verify_tells_rows_behind_from_drift(toy_app: Flask, captured: None) -> None:
    """A change captured and not applied yet is *behind*: verify says so and exits 0
    (live reads fall back meanwhile); a change capture never saw is drift: exit 1."""
    runner = toy_app.test_cli_runner()
    db.session.add_all([Book(title="Emma", copies=3), Book(title="Dune", copies=2)])
    db.session.commit()
    books = Book.__table__
    with db.engine.begin() as connection:  # an outside writer, captured
        connection.execute(update(books).where(books.c.title == "Emma").values(copies=7))

    behind = runner.invoke(args=["cqrs", "verify"])

    assert behind.exit_code == 0, behind.output
    assert "1 row behind, changes pending (flask cqrs refresh applies them)" in behind.output
    assert "behind different book_id=1: available: expected 7, actual 3" in behind.output

    with db.engine.begin() as connection:  # a writer capture cannot see: no triggers
        remove_capture(connection, shelf_model)
        connection.execute(update(books).where(books.c.title == "Dune").values(copies=5))
        install_capture(connection, shelf_model)

    drift = runner.invoke(args=["cqrs", "verify"])

    assert drift.exit_code == 1, drift.output
    assert "book_shelf: DRIFT missing=0 extra=0 different=1" in drift.output
    assert "different book_id=2: available: expected 5, actual 2" in drift.output
    assert "1 row behind" in drift.output
