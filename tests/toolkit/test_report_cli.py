"""``flask cqrs report`` on known comparison histories of the toy app."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner

from cqrs_layer.ops.context import toolkit_of
from cqrs_layer.testing.harness import GENEROUS_BUDGETS

from .helpers import MakeToyApp, comparison
from .toyapp import GetBook

ENDPOINT = "library.get_book"
TITLE_DIFF = {
    "entries": [{"path": "title", "kind": "changed", "legacy": "Dune", "new": "Dune!"}],
    "truncated": False,
}


@pytest.fixture
def shadow_app(make_toy_app: MakeToyApp) -> Flask:
    return make_toy_app(CQRS_ENDPOINT_STAGES={ENDPOINT: "shadow"})


@pytest.fixture
def runner(shadow_app: Flask) -> FlaskCliRunner:
    return shadow_app.test_cli_runner()


def seed(app: Flask, *rows: dict[str, Any]) -> None:
    history = toolkit_of(app).history
    for row in rows:
        history.record(comparison(ENDPOINT, **row))


def known_history(app: Flask) -> None:
    """Four comparisons: two matches, a mismatch, a new-path error (oldest first)."""
    seed(
        app,
        {"legacy_ms": 10.0, "new_ms": 1.0},
        {"legacy_ms": 20.0, "new_ms": 2.0},
        {"legacy_ms": 30.0, "new_ms": 3.0, "outcome": "mismatch", "diff": TITLE_DIFF},
        {
            "legacy_ms": 40.0,
            "new_ms": 900.0,
            "outcome": "error",
            "new_status": None,
            "new_error": "RuntimeError: boom",
        },
    )


def report_json(runner: FlaskCliRunner, *args: str) -> list[dict[str, Any]]:
    result = runner.invoke(args=["cqrs", "report", "--json", *args])
    assert result.exit_code == 0, result.output
    return list(json.loads(result.stdout))


def test_report_numbers_from_a_known_history(shadow_app: Flask, runner: FlaskCliRunner) -> None:
    known_history(shadow_app)
    [report] = report_json(runner)
    at = report["last_diffs"][0].pop("at")
    assert isinstance(at, str)
    assert report == {
        "endpoint": ENDPOINT,
        "stage": "shadow",
        "percent": 100.0,
        "sample_rate": 1.0,
        "samples": 4,
        "window": {
            "samples": 4,
            "mismatches": 1,
            "mismatch_rate": 0.25,
            "new_errors": 1,
            "legacy_errors": 0,
            "error_rate": 0.25,
        },
        "outcomes": {"match": 2, "mismatch": 1, "error": 1},
        # nearest rank; the failed run's 900 ms is not a served latency
        "latency_ms": {
            "legacy": {"p50": 20.0, "p95": 40.0},
            "new": {"p50": 2.0, "p95": 3.0},
        },
        "errors": {"legacy": 0, "new": 1},
        "fallbacks": 0,
        "fallback_reasons": {},
        "ready_to_promote": False,
        "why": (
            "4 of the 50 comparisons it needs; 1 mismatch(es) in the last 4; "
            "1 new-path error(s) in the last 4"
        ),
        "last_diffs": [
            {
                "request": "GET /library/books/1",
                "entries": TITLE_DIFF["entries"],
                "truncated": False,
            }
        ],
    }


def test_report_text(shadow_app: Flask, runner: FlaskCliRunner) -> None:
    known_history(shadow_app)
    result = runner.invoke(args=["cqrs", "report"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[:6] == [
        ENDPOINT,
        "  stage: shadow (100%, sampling 100%)",
        "  samples: 4 (window 4), mismatch rate 25.0% (1/4)",
        "  latency ms: legacy p50 20.0 p95 40.0 | new p50 2.0 p95 3.0",
        "  errors: legacy 0, new 1; fallbacks 0; legacy while changes pended 0",
        "  ready to promote: no (4 of the 50 comparisons it needs; 1 mismatch(es) in the last 4; "
        "1 new-path error(s) in the last 4)",
    ]
    assert lines[6] == "  last diffs:"
    assert lines[7].endswith("  GET /library/books/1")
    assert lines[8] == '      title: changed  legacy="Dune"  new="Dune!"'
    assert len(lines) == 9


def test_ready_to_promote_after_enough_clean_comparisons(make_toy_app: MakeToyApp) -> None:
    app = make_toy_app(
        CQRS_ENDPOINT_STAGES={ENDPOINT: "shadow"},
        CQRS_PROMOTION_MIN_COMPARISONS=3,
        CQRS_COMPARISON_WINDOW=3,
        CQRS_DEMOTION_MIN_COMPARISONS=3,
    )
    toy_runner = app.test_cli_runner()
    # An old mismatch has left the window: the three newest all matched.
    seed(
        app,
        {"legacy_ms": 5.0, "new_ms": 1.0, "outcome": "mismatch", "diff": TITLE_DIFF},
        *[{"legacy_ms": 5.0, "new_ms": 1.0}] * 3,
    )
    [report] = report_json(toy_runner, ENDPOINT)
    assert (report["ready_to_promote"], report["why"]) == (
        True,
        "3 comparisons in a row matched, no errors",
    )
    assert report["samples"] == 4
    text = toy_runner.invoke(args=["cqrs", "report", "--last", "0"]).stdout
    assert "  ready to promote: yes (3 comparisons in a row matched, no errors)" in text
    assert "last diffs" not in text


def test_report_after_real_comparisons_and_a_fallback(
    make_toy_app: MakeToyApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_toy_app(
        CQRS_ENDPOINT_STAGES={"library.add_book": "command", ENDPOINT: "live"}, **GENEROUS_BUDGETS
    )
    toolkit = toolkit_of(app)
    client = app.test_client()
    client.post("/library/books", json={"title": "Dune", "copies": 2})
    assert client.get("/library/books/1").status_code == 200  # a match
    # No book 2: the read model answers a JSON 404, legacy an HTML one: a mismatch.
    assert client.get("/library/books/2").status_code == 404
    assert toolkit.comparisons.drain(10)

    def broken(query: GetBook, connection: Any) -> Any:
        raise RuntimeError("boom")

    handlers: dict[Any, Any] = toolkit.query_bus.handlers
    monkeypatch.setitem(handlers, GetBook, broken)
    assert client.get("/library/books/1").headers["X-CQRS-Served-By"] == "legacy"
    assert toolkit.comparisons.drain(10)

    [report] = report_json(app.test_cli_runner())
    assert (report["stage"], report["samples"], report["fallbacks"]) == ("live", 3, 1)
    assert report["outcomes"] == {"match": 1, "mismatch": 1, "fallback": 1}
    assert report["errors"] == {"legacy": 0, "new": 1}
    assert report["fallback_reasons"] == {"RuntimeError: boom": 1}
    [diff] = report["last_diffs"]
    assert diff["request"] == "GET /library/books/2"
    assert [(e["path"], e["kind"]) for e in diff["entries"]] == [("$", "type")]
    assert diff["entries"][0]["new"] == {
        "error": {
            "status": 404,
            "code": "not_found",
            "message": "no book 2",
            "fields": [{"field": "book_id", "reason": "no book 2"}],
        }
    }
    assert report["latency_ms"]["legacy"]["p50"] > 0
    assert report["ready_to_promote"] is False


def test_report_refuses_an_unknown_endpoint(toy_runner: FlaskCliRunner) -> None:
    result = toy_runner.invoke(args=["cqrs", "report", "library.nope"])
    assert result.exit_code == 2
    assert "not a wrapped read endpoint: library.nope (known: library.get_book)" in result.stderr
    write = toy_runner.invoke(args=["cqrs", "report", "library.add_book"])
    assert write.exit_code == 2
    assert "not a wrapped read endpoint: library.add_book" in write.stderr


def test_report_with_no_history(toy_runner: FlaskCliRunner) -> None:
    result = toy_runner.invoke(args=["cqrs", "report"])
    assert result.exit_code == 0
    assert result.stdout.splitlines()[:2] == [ENDPOINT, "  stage: legacy (100%, sampling 100%)"]
    assert result.stdout.splitlines()[2:6] == [
        "  samples: 0 (window 0), mismatch rate 0.0% (0/0)",
        "  latency ms: legacy p50 - p95 - | new p50 - p95 -",
        "  errors: legacy 0, new 0; fallbacks 0; legacy while changes pended 0",
        "  ready to promote: no (0 of the 50 comparisons it needs)",
    ]
