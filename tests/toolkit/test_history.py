"""The comparison history (``rollout/history.py``), built without a Flask app: bounded per
endpoint, and the window readiness and demotion judge."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine

from cqrs_layer.core.tables import comparisons
from cqrs_layer.rollout.history import MAX_ERROR_CHARS, ComparisonHistory

from .helpers import comparison, record_comparisons, table_rows


def test_the_history_keeps_the_newest_rows_of_each_endpoint(engine: Engine) -> None:
    history = ComparisonHistory(engine, keep=3)
    for n in range(5):
        history.record(comparison("a", path=f"/a?n={n}"))
    history.record(comparison("b", path="/b"))
    assert [(r["endpoint"], r["path"]) for r in table_rows(engine, comparisons)] == [
        ("a", "/a?n=2"),
        ("a", "/a?n=3"),
        ("a", "/a?n=4"),
        ("b", "/b"),
    ]


def test_long_errors_are_clipped(engine: Engine) -> None:
    ComparisonHistory(engine, keep=10).record(comparison("a", "error", new_error="x" * 2000))
    [row] = table_rows(engine, comparisons)
    assert len(row["new_error"]) == MAX_ERROR_CHARS
    assert row["new_error"].endswith("…")


def test_the_window_counts_the_newest_rows(engine: Engine) -> None:
    history = ComparisonHistory(engine, keep=100)
    history.record(comparison("a", "mismatch"))
    record_comparisons(history, "a", 2, "error", new_error="boom", legacy_error="HTTP 500")
    record_comparisons(history, "a", 3)
    newest_five = history.window("a", 5)
    assert (newest_five.samples, newest_five.mismatches) == (5, 0)
    assert (newest_five.new_errors, newest_five.legacy_errors) == (2, 2)
    assert (newest_five.error_rate, newest_five.mismatch_rate) == (0.4, 0.0)
    assert history.window("a", 10).mismatches == 1
    assert history.window("b", 10).samples == 0
    assert history.window("b", 10).mismatch_rate == 0.0


def test_the_window_can_be_limited_to_a_stage_and_a_start(engine: Engine) -> None:
    history = ComparisonHistory(engine, keep=100)
    record_comparisons(history, "a", 2, "mismatch", stage="shadow")
    since = datetime.now(UTC).replace(tzinfo=None)
    record_comparisons(history, "a", 3, stage="live")
    assert history.window("a", 10, stage="live").samples == 3
    assert history.window("a", 10, stage="shadow").mismatches == 2
    assert history.window("a", 10, since=since).samples == 3
    assert history.window("a", 10, stage="shadow", since=since).samples == 0
