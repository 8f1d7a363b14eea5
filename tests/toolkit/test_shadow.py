"""Comparisons off the request path, fallback and automatic demotion, on the toy app.

The read model is made wrong, slow or failing by swapping the query handler (or corrupting
the read-model table); every comparison is waited for with ``drain`` before asserting.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask, request
from flask.testing import FlaskClient
from prometheus_client import REGISTRY
from sqlalchemy import Connection, text, update

from cqrs_layer import allow_unguarded_writes, shadow
from cqrs_layer.comparisons import comparisons

from .toyapp import GetBook, book_shelf, committed_rows, db, get_book_from_shelf

ENDPOINT = "library.get_book"
DUNE = {"id": 1, "title": "Dune", "available": 2, "on_loan": 0}
DELAY = 1.0  # seconds a slow read model takes


@pytest.fixture(autouse=True)
def stop_comparisons(toy_app: Flask) -> Iterator[None]:
    yield
    assert shadow.runner_for(toy_app).shutdown(10), "comparisons still running after 10 s"


def use_stage(app: Flask, stage: str) -> None:
    app.config["CQRS_ENDPOINT_MODES"] = {"library.add_book": "command", ENDPOINT: stage}


def add_dune(app: Flask, client: FlaskClient) -> None:
    use_stage(app, "legacy")
    added = client.post("/library/books", json={"title": "Dune", "copies": 2})
    assert (added.status_code, added.headers["X-CQRS-Served-By"]) == (201, "command")


def swap_handler(monkeypatch: pytest.MonkeyPatch, app: Flask, handler: Any) -> None:
    monkeypatch.setitem(app.extensions["cqrs"].query_bus.handlers, GetBook, handler)


def drained(app: Flask) -> bool:
    return shadow.drain(app, timeout=10)


def history() -> list[dict[str, Any]]:
    return committed_rows(comparisons)


def counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def timed_get(client: FlaskClient, path: str) -> tuple[Any, float]:
    started = time.perf_counter()
    response = client.get(path)
    return response, time.perf_counter() - started


def run_slow_sql(connection: Connection) -> None:
    """A query that would run for seconds unless the database stops it."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SELECT pg_sleep(5)")
    else:
        connection.exec_driver_sql(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
            "WHERE x < 1000000000) SELECT count(*) FROM c"
        )


def corrupt_title(title: str) -> None:
    with allow_unguarded_writes(), db.engine.begin() as connection:
        connection.execute(update(book_shelf).values(title=title))


# ---------------------------------------------------------------- shadow


def test_shadow_serves_legacy_and_records_a_match(toy_app: Flask, toy_client: FlaskClient) -> None:
    add_dune(toy_app, toy_client)
    use_stage(toy_app, "shadow")
    before = counter("cqrs_comparisons_total", endpoint=ENDPOINT, outcome="match")

    response = toy_client.get("/library/books/1?verbose=1")
    assert (response.status_code, response.get_json()) == (200, DUNE)
    assert response.headers["X-CQRS-Served-By"] == "legacy"
    assert drained(toy_app)

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


def test_shadow_catches_and_diffs_a_wrong_read_model(
    toy_app: Flask, toy_client: FlaskClient
) -> None:
    add_dune(toy_app, toy_client)
    corrupt_title("Dune (misprint)")
    use_stage(toy_app, "shadow")

    response = toy_client.get("/library/books/1")
    assert response.get_json() == DUNE  # the user gets the legacy answer
    assert drained(toy_app)

    [row] = history()
    assert row["outcome"] == "mismatch"
    assert row["diff"] == {
        "entries": [
            {"path": "title", "kind": "changed", "legacy": "Dune", "new": "Dune (misprint)"}
        ],
        "truncated": False,
    }


def test_the_comparison_is_queued_only_once_the_server_closes_the_response(
    toy_app: Flask, toy_client: FlaskClient
) -> None:
    """Queued any earlier, a worker thread would compete with the response still being
    written (for the GIL, and on SQLite for this process's CPU)."""
    add_dune(toy_app, toy_client)
    use_stage(toy_app, "shadow")
    runner = shadow.runner_for(toy_app)

    response = toy_client.get("/library/books/1", buffered=False)  # as a server holds it
    assert response.get_json() == DUNE
    assert (runner.pending, drained(toy_app), history()) == (0, True, [])

    response.close()  # what a WSGI server does once the client has the response
    assert drained(toy_app)
    assert [row["outcome"] for row in history()] == ["match"]


def test_stage_legacy_compares_nothing(toy_app: Flask, toy_client: FlaskClient) -> None:
    add_dune(toy_app, toy_client)
    assert toy_client.get("/library/books/1").headers["X-CQRS-Served-By"] == "legacy"
    assert drained(toy_app)
    assert history() == []


def test_a_slow_read_model_never_delays_the_shadow_response(
    toy_app: Flask, toy_client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_dune(toy_app, toy_client)
    use_stage(toy_app, "shadow")

    def slow(query: GetBook, connection: Connection) -> Any:
        time.sleep(DELAY)
        return get_book_from_shelf(query, connection)

    swap_handler(monkeypatch, toy_app, slow)
    response, elapsed = timed_get(toy_client, "/library/books/1")
    assert (response.get_json(), response.headers["X-CQRS-Served-By"]) == (DUNE, "legacy")
    assert elapsed < DELAY / 2  # the comparison's sleep is not on the request path
    assert drained(toy_app)
    [row] = history()
    assert row["outcome"] == "match"
    assert row["new_ms"] >= DELAY * 1000


def test_a_comparison_past_its_timeout_is_stopped_and_recorded(
    toy_app: Flask, toy_client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_dune(toy_app, toy_client)
    use_stage(toy_app, "shadow")
    toy_app.config["CQRS_COMPARISON_TIMEOUT_MS"] = 200

    def slow_sql(query: GetBook, connection: Connection) -> Any:
        run_slow_sql(connection)
        return get_book_from_shelf(query, connection)

    swap_handler(monkeypatch, toy_app, slow_sql)
    started = time.perf_counter()
    response = toy_client.get("/library/books/1")
    assert response.get_json() == DUNE
    assert drained(toy_app)
    # The 5-second (or longer) query was interrupted by the database at the budget.
    assert time.perf_counter() - started < 3
    [row] = history()
    assert (row["outcome"], row["new_status"]) == ("timeout", None)
    assert row["new_error"].startswith("DeadlineExceeded: timed out after")
    assert row["new_error"].endswith("(budget 200 ms)")


def test_errors_in_the_shadow_path_are_recorded(
    toy_app: Flask, toy_client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_dune(toy_app, toy_client)
    use_stage(toy_app, "shadow")

    def broken(query: GetBook, connection: Connection) -> Any:
        raise RuntimeError("read model exploded")

    swap_handler(monkeypatch, toy_app, broken)
    response = toy_client.get("/library/books/1")
    assert (response.status_code, response.get_json()) == (200, DUNE)
    assert drained(toy_app)
    [row] = history()
    assert (row["outcome"], row["legacy_status"], row["new_status"]) == ("error", 200, None)
    assert (row["legacy_error"], row["new_error"]) == (None, "RuntimeError: read model exploded")


# ---------------------------------------------------------------- live


def test_live_serves_the_read_model_and_compares_with_legacy(
    toy_app: Flask, toy_client: FlaskClient
) -> None:
    add_dune(toy_app, toy_client)
    use_stage(toy_app, "live")
    response = toy_client.get("/library/books/1")
    assert (response.get_json(), response.headers["X-CQRS-Served-By"]) == (DUNE, "read-model")
    assert drained(toy_app)
    [row] = history()
    assert (row["stage"], row["served_by"], row["outcome"]) == ("live", "read-model", "match")
    assert (row["legacy_status"], row["new_status"]) == (200, 200)


def test_live_falls_back_to_legacy_when_the_read_model_errors(
    toy_app: Flask, toy_client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_dune(toy_app, toy_client)
    use_stage(toy_app, "live")
    before = counter("cqrs_fallbacks_total", endpoint=ENDPOINT, reason="error")

    def broken(query: GetBook, connection: Connection) -> Any:
        raise RuntimeError("read model exploded")

    swap_handler(monkeypatch, toy_app, broken)
    response = toy_client.get("/library/books/1")
    assert (response.status_code, response.get_json()) == (200, DUNE)
    assert response.headers["X-CQRS-Served-By"] == "legacy"
    assert drained(toy_app)
    assert counter("cqrs_fallbacks_total", endpoint=ENDPOINT, reason="error") == before + 1
    [row] = history()
    assert (row["stage"], row["served_by"], row["outcome"]) == ("live", "legacy", "fallback")
    assert (row["legacy_status"], row["new_error"]) == (200, "RuntimeError: read model exploded")


def test_live_falls_back_when_a_slow_query_passes_the_timeout(
    toy_app: Flask, toy_client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_dune(toy_app, toy_client)
    use_stage(toy_app, "live")
    toy_app.config["CQRS_READ_TIMEOUT_MS"] = 200
    before = counter("cqrs_fallbacks_total", endpoint=ENDPOINT, reason="timeout")

    def slow_sql(query: GetBook, connection: Connection) -> Any:
        run_slow_sql(connection)
        return get_book_from_shelf(query, connection)

    swap_handler(monkeypatch, toy_app, slow_sql)
    response, elapsed = timed_get(toy_client, "/library/books/1")
    assert (response.get_json(), response.headers["X-CQRS-Served-By"]) == (DUNE, "legacy")
    assert 0.2 <= elapsed < 2  # the database stopped the 5 s query at the 200 ms budget
    assert drained(toy_app)
    assert counter("cqrs_fallbacks_total", endpoint=ENDPOINT, reason="timeout") == before + 1
    [row] = history()
    assert row["outcome"] == "fallback"
    assert row["new_error"].startswith("DeadlineExceeded: timed out after")
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect() as connection:
            still_running = connection.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                    "AND query LIKE '%pg_sleep(5)%' AND pid <> pg_backend_pid()"
                )
            )
        assert still_running == 0


def test_live_discards_an_answer_that_came_too_late_in_python(
    toy_app: Flask, toy_client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_dune(toy_app, toy_client)
    use_stage(toy_app, "live")
    toy_app.config["CQRS_READ_TIMEOUT_MS"] = 50

    def slow_python(query: GetBook, connection: Connection) -> Any:
        time.sleep(0.15)  # no query to interrupt: measured and discarded
        return {"id": 1, "title": "late"}

    swap_handler(monkeypatch, toy_app, slow_python)
    response = toy_client.get("/library/books/1")
    assert (response.get_json(), response.headers["X-CQRS-Served-By"]) == (DUNE, "legacy")
    assert drained(toy_app)
    assert history()[0]["outcome"] == "fallback"


def test_complete_falls_back_to_legacy_too(
    toy_app: Flask, toy_client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_dune(toy_app, toy_client)
    use_stage(toy_app, "complete")

    def broken(query: GetBook, connection: Connection) -> Any:
        raise RuntimeError("gone")

    swap_handler(monkeypatch, toy_app, broken)
    response = toy_client.get("/library/books/1")
    assert (response.get_json(), response.headers["X-CQRS-Served-By"]) == (DUNE, "legacy")
    assert drained(toy_app)
    assert [(r["stage"], r["outcome"]) for r in history()] == [("complete", "fallback")]


# ---------------------------------------------------------------- automatic demotion


def test_a_wrong_read_model_in_live_is_auto_demoted_and_audited(
    toy_app: Flask, toy_client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="cqrs_layer.demotion")
    toy_app.config.update(CQRS_DEMOTION_MIN_SAMPLES=3, CQRS_DEMOTION_WINDOW=10)
    add_dune(toy_app, toy_client)
    corrupt_title("Dune (misprint)")
    flags = toy_app.extensions["cqrs"].flags
    flags.set_stage(ENDPOINT, "live", actor="ops", reason="try it", force=True)

    for _ in range(3):
        served = toy_client.get("/library/books/1")
        assert served.headers["X-CQRS-Served-By"] == "read-model"
        assert served.get_json()["title"] == "Dune (misprint)"
        assert drained(toy_app)

    assert flags.get(ENDPOINT).stage == "shadow"
    latest = flags.history(ENDPOINT)[0]
    reason = "mismatch rate 100.0% (3/3) over the last 3 live comparisons exceeds 1.0%"
    assert (latest.actor, latest.from_stage, latest.to_stage, latest.forced) == (
        "auto-demotion",
        "live",
        "shadow",
        False,
    )
    assert latest.reason == reason
    assert [r.getMessage() for r in caplog.records if r.name == "cqrs_layer.demotion"] == [
        f"auto-demoted {ENDPOINT} from live to shadow: {reason}"
    ]
    assert [(r["stage"], r["outcome"]) for r in history()] == [("live", "mismatch")] * 3
    assert history()[0]["diff"]["entries"] == [
        {"path": "title", "kind": "changed", "legacy": "Dune", "new": "Dune (misprint)"}
    ]

    after = toy_client.get("/library/books/1")  # shadow now: the legacy answer again
    assert (after.get_json(), after.headers["X-CQRS-Served-By"]) == (DUNE, "legacy")
    assert drained(toy_app)
    assert [e.actor for e in flags.history(ENDPOINT)] == ["auto-demotion", "ops"]


def test_a_failing_read_model_in_live_is_auto_demoted_on_its_error_rate(
    toy_app: Flask, toy_client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    toy_app.config.update(CQRS_DEMOTION_MIN_SAMPLES=3, CQRS_DEMOTION_WINDOW=10)
    add_dune(toy_app, toy_client)
    flags = toy_app.extensions["cqrs"].flags
    flags.set_stage(ENDPOINT, "live", actor="ops", reason="try it", force=True)

    def broken(query: GetBook, connection: Connection) -> Any:
        raise RuntimeError("read model exploded")

    swap_handler(monkeypatch, toy_app, broken)
    for expected_stage in ("live", "live", "live"):
        assert flags.get(ENDPOINT).stage == expected_stage
        assert toy_client.get("/library/books/1").get_json() == DUNE
        assert drained(toy_app)
    assert flags.get(ENDPOINT).stage == "shadow"
    assert flags.history(ENDPOINT)[0].reason == (
        "new-path error rate 100.0% (3/3) over the last 3 live comparisons exceeds 5.0%"
    )


def test_too_few_samples_do_not_demote(toy_app: Flask, toy_client: FlaskClient) -> None:
    toy_app.config.update(CQRS_DEMOTION_MIN_SAMPLES=3)
    add_dune(toy_app, toy_client)
    corrupt_title("wrong")
    flags = toy_app.extensions["cqrs"].flags
    flags.set_stage(ENDPOINT, "live", actor="ops", reason="try it", force=True)
    for _ in range(2):
        toy_client.get("/library/books/1")
        assert drained(toy_app)
    assert flags.get(ENDPOINT).stage == "live"


# ---------------------------------------------------------------- the pool


def test_a_full_pool_drops_comparisons_without_blocking_requests(
    toy_app: Flask, toy_client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    toy_app.config.update(CQRS_COMPARISON_WORKERS=1, CQRS_COMPARISON_QUEUE=1)
    add_dune(toy_app, toy_client)
    use_stage(toy_app, "shadow")
    entered, release = threading.Event(), threading.Event()

    def blocked(query: GetBook, connection: Connection) -> Any:
        entered.set()
        release.wait(10)
        return get_book_from_shelf(query, connection)

    swap_handler(monkeypatch, toy_app, blocked)
    dropped_before = counter("cqrs_comparisons_dropped_total")
    assert toy_client.get("/library/books/1").get_json() == DUNE  # runs, then blocks
    assert entered.wait(5)
    for _ in range(4):  # one more fits in the queue; three do not
        response, elapsed = timed_get(toy_client, "/library/books/1")
        assert (response.get_json(), response.headers["X-CQRS-Served-By"]) == (DUNE, "legacy")
        assert elapsed < 0.5

    runner = shadow.runner_for(toy_app)
    assert (runner.dropped, runner.pending) == (3, 2)
    assert counter("cqrs_comparisons_dropped_total") == dropped_before + 3
    assert not runner.drain(0.05)  # still blocked: drain says so instead of hanging
    release.set()
    assert drained(toy_app)
    assert [r["outcome"] for r in history()] == ["match", "match"]


def test_history_is_bounded_per_endpoint(toy_app: Flask, toy_client: FlaskClient) -> None:
    toy_app.config["CQRS_COMPARISON_HISTORY"] = 3
    add_dune(toy_app, toy_client)
    use_stage(toy_app, "shadow")
    for n in range(5):
        toy_client.get(f"/library/books/1?n={n}")
        assert drained(toy_app)
    assert [r["path"] for r in history()] == [f"/library/books/1?n={n}" for n in (2, 3, 4)]


def test_the_copied_request_keeps_method_path_query_headers_and_client(toy_app: Flask) -> None:
    with toy_app.test_request_context(
        "/library/books/7?fields=title&fields=id",
        headers={"Authorization": "Bearer x", "X-CQRS-Subject": "ann"},
        environ_base={"REMOTE_ADDR": "10.0.0.7"},
    ):
        copy = shadow.RequestCopy.of(request, max_body=1000)
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
