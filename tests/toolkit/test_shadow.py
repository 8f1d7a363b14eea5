"""Comparisons off the request path, fallback and automatic demotion, on the toy app.

The read model is made wrong, slow or failing by swapping the query handler (or corrupting
the read-model table); every comparison is waited for with ``drain`` before asserting.
Nothing here measures time: a slow path is one that blocks until the test releases it,
and a time budget is checked by its outcome (stopped, recorded as a timeout, served by
legacy), on queries that would otherwise run for a minute or more.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
from flask import Flask, request
from flask.testing import FlaskClient
from prometheus_client import REGISTRY
from sqlalchemy import Connection, insert, update

from cqrs_layer import CQRS, ComparisonOptions, allow_unguarded_writes
from cqrs_layer.core.tables import comparisons
from cqrs_layer.ops.context import toolkit_of
from cqrs_layer.rollout import deadline as deadline_module
from cqrs_layer.rollout.comparisons import RequestCopy
from cqrs_layer.testing.harness import GENEROUS_BUDGETS

from .helpers import (
    FakeClock,
    MakeToyApp,
    change,
    run_slow_sql,
    running,
    slow_queries_still_running,
)
from .toyapp import (
    Book,
    GetBook,
    book_shelf,
    committed_rows,
    create_toy_app,
    db,
    get_book_from_shelf,
)

ENDPOINT = "library.get_book"
DUNE = {"id": 1, "title": "Dune", "available": 2, "on_loan": 0}
#: The settings of the demotion tests: judged after 3 live comparisons.
DEMOTE_AFTER_3 = {
    "CQRS_DEMOTION_MIN_COMPARISONS": 3,
    "CQRS_COMPARISON_WINDOW": 10,
    "CQRS_PROMOTION_MIN_COMPARISONS": 10,
}


def app_at(make_toy_app: MakeToyApp, stage: str, **config: Any) -> tuple[Flask, FlaskClient]:
    """The toy app with the read endpoint at ``stage`` and Dune added through its command;
    time budgets a loaded machine cannot reach, unless the test sets them."""
    app = make_toy_app(
        CQRS_ENDPOINT_STAGES={"library.add_book": "command", ENDPOINT: stage},
        **{**GENEROUS_BUDGETS, **config},
    )
    client = app.test_client()
    added = client.post("/library/books", json={"title": "Dune", "copies": 2})
    assert (added.status_code, added.headers["X-CQRS-Served-By"]) == (201, "command")
    assert drained(app)  # what the write guard learned is recorded off the request path
    return app, client


def swap_handler(monkeypatch: pytest.MonkeyPatch, app: Flask, handler: Any) -> None:
    handlers: dict[Any, Any] = toolkit_of(app).query_bus.handlers
    monkeypatch.setitem(handlers, GetBook, handler)


def drained(app: Flask) -> bool:
    return toolkit_of(app).comparisons.drain(10)


def history() -> list[dict[str, Any]]:
    return committed_rows(comparisons)


def counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def corrupt_title(title: str) -> None:
    with allow_unguarded_writes(), db.engine.begin() as connection:
        connection.execute(update(book_shelf).values(title=title))


def broken(query: GetBook, connection: Connection) -> Any:
    raise RuntimeError("read model exploded")


def slow_sql(query: GetBook, connection: Connection) -> Any:
    run_slow_sql(connection)
    return get_book_from_shelf(query, connection)


class BlockingReadModel:
    """A read model that blocks until the test lets it answer."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def handler(self, query: GetBook, connection: Connection) -> Any:
        self.entered.set()
        self.release.wait(10)
        return get_book_from_shelf(query, connection)


# ---------------------------------------------------------------- shadow


def test_shadow_serves_legacy_and_records_a_match(make_toy_app: MakeToyApp) -> None:
    app, client = app_at(make_toy_app, "shadow")
    before = counter("cqrs_comparisons_total", endpoint=ENDPOINT, outcome="match")

    response = client.get("/library/books/1?verbose=1")
    assert (response.status_code, response.get_json()) == (200, DUNE)
    assert response.headers["X-CQRS-Served-By"] == "legacy"
    assert drained(app)

    [row] = history()
    assert {k: row[k] for k in ("endpoint", "stage", "served_by", "outcome", "method", "path")} == {
        "endpoint": ENDPOINT,
        "stage": "shadow",
        "served_by": "legacy",
        "outcome": "match",
        "method": "GET",
        "path": "/library/books/1?verbose=1",
    }
    assert (row["legacy_status"], row["new_status"], row["diff"]) == (200, 200, None)
    assert (row["legacy_error"], row["new_error"]) == (None, None)
    assert row["legacy_ms"] > 0 and row["new_ms"] > 0
    assert counter("cqrs_comparisons_total", endpoint=ENDPOINT, outcome="match") == before + 1


def test_shadow_catches_and_diffs_a_wrong_read_model(make_toy_app: MakeToyApp) -> None:
    app, client = app_at(make_toy_app, "shadow")
    corrupt_title("Dune (misprint)")

    response = client.get("/library/books/1")
    assert response.get_json() == DUNE  # the user gets the legacy answer
    assert drained(app)

    [row] = history()
    assert row["outcome"] == "mismatch"
    assert row["diff"] == {
        "entries": [
            {"path": "title", "kind": "changed", "legacy": "Dune", "new": "Dune (misprint)"}
        ],
        "truncated": False,
    }


def test_the_comparison_is_queued_only_once_the_server_closes_the_response(
    make_toy_app: MakeToyApp,
) -> None:
    """Queued any earlier, a worker thread would compete with the response still being
    written (for the GIL, and on SQLite for this process's CPU)."""
    app, client = app_at(make_toy_app, "shadow")
    pool = toolkit_of(app).comparisons.pool()

    response = client.get("/library/books/1", buffered=False)  # as a server holds it
    assert response.get_json() == DUNE
    assert (pool.pending, drained(app), history()) == (0, True, [])

    response.close()  # what a WSGI server does once the client has the response
    assert drained(app)
    assert [row["outcome"] for row in history()] == ["match"]


def test_stage_legacy_compares_nothing(make_toy_app: MakeToyApp) -> None:
    app, client = app_at(make_toy_app, "legacy")
    assert client.get("/library/books/1").headers["X-CQRS-Served-By"] == "legacy"
    assert drained(app)
    assert history() == []


def test_a_slow_read_model_never_delays_the_shadow_response(
    make_toy_app: MakeToyApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Was: timed (the response under half the read model's delay). Now the read model
    blocks until released, and the response arrives while it is still blocked."""
    app, client = app_at(make_toy_app, "shadow")
    slow = BlockingReadModel()
    swap_handler(monkeypatch, app, slow.handler)

    response = client.get("/library/books/1")
    assert (response.get_json(), response.headers["X-CQRS-Served-By"]) == (DUNE, "legacy")
    assert slow.entered.wait(10)  # the comparison runs now, after the response
    assert toolkit_of(app).comparisons.pool().pending == 1
    assert history() == []
    slow.release.set()
    assert drained(app)
    [row] = history()
    assert row["outcome"] == "match"
    assert row["new_ms"] > 0


def test_a_comparison_past_its_timeout_is_stopped_and_recorded(
    make_toy_app: MakeToyApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Was: also timed (done within 3 s). The query would run for a minute or more: the
    comparison finishing (drained) as a timeout is the proof it was stopped."""
    app, client = app_at(make_toy_app, "shadow", CQRS_COMPARISON_TIMEOUT_MS=200)
    swap_handler(monkeypatch, app, slow_sql)

    response = client.get("/library/books/1")
    assert response.get_json() == DUNE
    assert drained(app)
    [row] = history()
    assert (row["outcome"], row["new_status"]) == ("timeout", None)
    assert row["new_error"].startswith("DeadlineExceeded: timed out after")
    assert row["new_error"].endswith("(budget 200 ms)")
    if db.engine.dialect.name == "postgresql":
        assert slow_queries_still_running(db.engine) == 0


def test_errors_in_the_shadow_path_are_recorded(
    make_toy_app: MakeToyApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, client = app_at(make_toy_app, "shadow")
    swap_handler(monkeypatch, app, broken)
    response = client.get("/library/books/1")
    assert (response.status_code, response.get_json()) == (200, DUNE)
    assert drained(app)
    [row] = history()
    assert (row["outcome"], row["legacy_status"], row["new_status"]) == ("error", 200, None)
    assert (row["legacy_error"], row["new_error"]) == (None, "RuntimeError: read model exploded")


@pytest.mark.parametrize(
    ("options", "outcome"),
    [(None, "mismatch"), (ComparisonOptions(ignore=["title"]), "match")],
)
def test_the_comparison_option_declares_what_may_differ(
    database_url: str, options: ComparisonOptions | None, outcome: str
) -> None:
    """``query_endpoint(comparison=...)`` (was ``compare=``) reaches the comparisons."""
    config = {"SQLALCHEMY_DATABASE_URI": database_url, "CQRS_DEFAULT_READ_STAGE": "shadow"}
    app = create_toy_app(config, wired=False)
    cqrs = CQRS(app, db)
    cqrs.register_query(GetBook, get_book_from_shelf)
    cqrs.query_endpoint(
        ENDPOINT,
        build=lambda _, args: GetBook(book_id=args["book_id"]),
        read_models=["book_shelf"],
        comparison=options,
    )
    assert toolkit_of(app).router.wrapped[ENDPOINT].options == (options or ComparisonOptions())
    with running(app):
        with allow_unguarded_writes(), db.engine.begin() as connection:
            connection.execute(insert(Book).values(id=1, title="Dune", copies=2, version=1))
            connection.execute(
                insert(book_shelf).values(book_id=1, title="Dune!", available=2, on_loan=0)
            )
        response = app.test_client().get("/library/books/1")
        assert (response.get_json(), response.headers["X-CQRS-Served-By"]) == (DUNE, "legacy")
        assert drained(app)
        [row] = history()
        assert row["outcome"] == outcome


# ---------------------------------------------------------------- live


def test_live_serves_the_read_model_and_compares_with_legacy(make_toy_app: MakeToyApp) -> None:
    app, client = app_at(make_toy_app, "live")
    response = client.get("/library/books/1")
    assert (response.get_json(), response.headers["X-CQRS-Served-By"]) == (DUNE, "read-model")
    assert drained(app)
    [row] = history()
    assert (row["stage"], row["served_by"], row["outcome"]) == ("live", "read-model", "match")
    assert (row["legacy_status"], row["new_status"]) == (200, 200)


def test_live_falls_back_to_legacy_when_the_read_model_errors(
    make_toy_app: MakeToyApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, client = app_at(make_toy_app, "live")
    before = counter("cqrs_fallbacks_total", endpoint=ENDPOINT, reason="error")
    swap_handler(monkeypatch, app, broken)
    response = client.get("/library/books/1")
    assert (response.status_code, response.get_json()) == (200, DUNE)
    assert response.headers["X-CQRS-Served-By"] == "legacy"
    assert drained(app)
    assert counter("cqrs_fallbacks_total", endpoint=ENDPOINT, reason="error") == before + 1
    [row] = history()
    assert (row["stage"], row["served_by"], row["outcome"]) == ("live", "legacy", "fallback")
    assert (row["legacy_status"], row["new_error"]) == (200, "RuntimeError: read model exploded")


def test_live_falls_back_when_a_slow_query_passes_the_timeout(
    make_toy_app: MakeToyApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Was: also timed (answered within 0.2-2 s). The query would run for a minute or
    more: a legacy answer with a timeout recorded, and (PostgreSQL) no query left running
    on the server, show the database stopped it at the budget."""
    app, client = app_at(make_toy_app, "live", CQRS_READ_TIMEOUT_MS=200)
    before = counter("cqrs_fallbacks_total", endpoint=ENDPOINT, reason="timeout")
    swap_handler(monkeypatch, app, slow_sql)

    response = client.get("/library/books/1")
    assert (response.get_json(), response.headers["X-CQRS-Served-By"]) == (DUNE, "legacy")
    assert drained(app)
    assert counter("cqrs_fallbacks_total", endpoint=ENDPOINT, reason="timeout") == before + 1
    [row] = history()
    assert row["outcome"] == "fallback"
    assert row["new_error"].startswith("DeadlineExceeded: timed out after")
    assert row["new_error"].endswith("(budget 200 ms)")
    if db.engine.dialect.name == "postgresql":
        assert slow_queries_still_running(db.engine) == 0


def test_live_discards_an_answer_that_came_too_late_in_python(
    make_toy_app: MakeToyApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, client = app_at(make_toy_app, "live", CQRS_READ_TIMEOUT_MS=50)
    clock = FakeClock()
    monkeypatch.setattr(deadline_module, "time", clock)  # the read path's time budget

    def slow_python(query: GetBook, connection: Connection) -> Any:
        clock.advance(0.15)  # past the budget with no query to interrupt: measured, discarded
        return {"id": 1, "title": "late"}

    swap_handler(monkeypatch, app, slow_python)
    response = client.get("/library/books/1")
    assert (response.get_json(), response.headers["X-CQRS-Served-By"]) == (DUNE, "legacy")
    assert drained(app)
    [row] = history()
    assert row["outcome"] == "fallback"
    assert row["new_error"] == "DeadlineExceeded: timed out after 150 ms (budget 50 ms)"


def test_complete_falls_back_to_legacy_too(
    make_toy_app: MakeToyApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, client = app_at(make_toy_app, "complete")
    swap_handler(monkeypatch, app, broken)
    response = client.get("/library/books/1")
    assert (response.get_json(), response.headers["X-CQRS-Served-By"]) == (DUNE, "legacy")
    assert drained(app)
    assert [(r["stage"], r["outcome"]) for r in history()] == [("complete", "fallback")]


# ---------------------------------------------------------------- automatic demotion


def test_a_wrong_read_model_in_live_is_auto_demoted_and_audited(
    make_toy_app: MakeToyApp, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="cqrs.demotion")
    app, client = app_at(make_toy_app, "legacy", **DEMOTE_AFTER_3)
    corrupt_title("Dune (misprint)")
    toolkit = toolkit_of(app)
    change(toolkit, ENDPOINT, "live", reason="try it", force=True)

    for _ in range(3):
        served = client.get("/library/books/1")
        assert served.headers["X-CQRS-Served-By"] == "read-model"
        assert served.get_json()["title"] == "Dune (misprint)"
        assert drained(app)

    assert toolkit.flags.get(ENDPOINT).stage == "shadow"
    latest = toolkit.flags.history(ENDPOINT)[0]
    reason = "mismatch rate 100.0% (3/3) over the last 3 live comparisons exceeds 1.0%"
    assert (latest.actor, latest.from_stage, latest.to_stage, latest.forced) == (
        "auto-demotion",
        "live",
        "shadow",
        False,
    )
    assert latest.reason == reason
    assert [r.getMessage() for r in caplog.records if r.name == "cqrs.demotion"] == [
        f"auto-demoted {ENDPOINT} from live to shadow: {reason}"
    ]
    assert [(r["stage"], r["outcome"]) for r in history()] == [("live", "mismatch")] * 3
    assert history()[0]["diff"]["entries"] == [
        {"path": "title", "kind": "changed", "legacy": "Dune", "new": "Dune (misprint)"}
    ]

    after = client.get("/library/books/1")  # shadow now: the legacy answer again
    assert (after.get_json(), after.headers["X-CQRS-Served-By"]) == (DUNE, "legacy")
    assert drained(app)
    assert [e.actor for e in toolkit.flags.history(ENDPOINT)] == ["auto-demotion", "ops"]


def test_a_failing_read_model_in_live_is_auto_demoted_on_its_error_rate(
    make_toy_app: MakeToyApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, client = app_at(make_toy_app, "legacy", **DEMOTE_AFTER_3)
    flags = toolkit_of(app).flags
    change(toolkit_of(app), ENDPOINT, "live", reason="try it", force=True)
    swap_handler(monkeypatch, app, broken)
    for expected_stage in ("live", "live", "live"):
        assert flags.get(ENDPOINT).stage == expected_stage
        assert client.get("/library/books/1").get_json() == DUNE
        assert drained(app)
    assert flags.get(ENDPOINT).stage == "shadow"
    assert flags.history(ENDPOINT)[0].reason == (
        "new-path error rate 100.0% (3/3) over the last 3 live comparisons exceeds 5.0%"
    )


def test_too_few_comparisons_do_not_demote(make_toy_app: MakeToyApp) -> None:
    app, client = app_at(make_toy_app, "legacy", **DEMOTE_AFTER_3)
    corrupt_title("wrong")
    change(toolkit_of(app), ENDPOINT, "live", reason="try it", force=True)
    for _ in range(2):
        client.get("/library/books/1")
        assert drained(app)
    assert toolkit_of(app).flags.get(ENDPOINT).stage == "live"


# ---------------------------------------------------------------- the pool


def test_a_full_pool_drops_comparisons_without_blocking_requests(
    make_toy_app: MakeToyApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Was: also timed (each response under 0.5 s). Now every response arrives while the
    only worker is still blocked, which it could not if a request waited for the queue."""
    app, client = app_at(make_toy_app, "shadow", CQRS_COMPARISON_WORKERS=1, CQRS_COMPARISON_QUEUE=1)
    blocked = BlockingReadModel()
    swap_handler(monkeypatch, app, blocked.handler)
    dropped_before = counter("cqrs_comparisons_dropped_total")
    assert client.get("/library/books/1").get_json() == DUNE  # runs, then blocks
    assert blocked.entered.wait(10)
    for _ in range(4):  # one more fits in the queue; three do not
        response = client.get("/library/books/1")
        assert (response.get_json(), response.headers["X-CQRS-Served-By"]) == (DUNE, "legacy")
    assert not blocked.release.is_set()

    pool = toolkit_of(app).comparisons.pool()
    assert (pool.dropped, pool.pending) == (3, 2)
    assert counter("cqrs_comparisons_dropped_total") == dropped_before + 3
    assert not pool.drain(0)  # still blocked: drain says so instead of hanging
    blocked.release.set()
    assert drained(app)
    assert [r["outcome"] for r in history()] == ["match", "match"]


def test_history_is_bounded_per_endpoint(make_toy_app: MakeToyApp) -> None:
    app, client = app_at(
        make_toy_app, "shadow",
        CQRS_COMPARISON_HISTORY=3, CQRS_COMPARISON_WINDOW=3,
        CQRS_PROMOTION_MIN_COMPARISONS=3, CQRS_DEMOTION_MIN_COMPARISONS=3,
    )  # fmt: skip
    for n in range(5):
        client.get(f"/library/books/1?n={n}")
        assert drained(app)
    assert [r["path"] for r in history()] == [f"/library/books/1?n={n}" for n in (2, 3, 4)]


def test_the_copied_request_keeps_method_path_query_headers_and_client(toy_app: Flask) -> None:
    with toy_app.test_request_context(
        "/library/books/7?fields=title&fields=id",
        headers={"Authorization": "Bearer x", "X-CQRS-Subject": "ann"},
        environ_base={"REMOTE_ADDR": "10.0.0.7"},
    ):
        copy = RequestCopy.of(request, max_body=1000)
    assert copy is not None
    assert (copy.method, copy.path) == ("GET", "/library/books/7?fields=title&fields=id")
    with toy_app.request_context(copy.fresh_environ()):
        assert request.url_rule is not None and request.url_rule.endpoint == ENDPOINT
        assert request.view_args == {"book_id": 7}
        assert request.args.getlist("fields") == ["title", "id"]
        assert request.headers["Authorization"] == "Bearer x"
        assert request.headers["X-CQRS-Subject"] == "ann"
        assert request.remote_addr == "10.0.0.7"
        assert request.get_data() == b""
