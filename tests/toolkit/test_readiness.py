"""The one readiness rule (``rollout/readiness.py``) and the promotion gate applying it,
built without a Flask app: ready = at least ``CQRS_PROMOTION_MIN_COMPARISONS`` in the
newest ``CQRS_COMPARISON_WINDOW`` comparisons, none a mismatch or an error."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from cqrs_layer.core.registry import Endpoint, Registry
from cqrs_layer.rollout.gate import PromotionRefused
from cqrs_layer.rollout.history import Window
from cqrs_layer.rollout.readiness import readiness

from .helpers import Rollout, change, comparison, record_comparisons, rollout

READ = "x"


def window(
    samples: int, mismatches: int = 0, new_errors: int = 0, legacy_errors: int = 0
) -> Window:
    return Window(samples, mismatches, new_errors, legacy_errors)


# ---------------------------------------------------------------- the rule


def test_zero_comparisons_is_not_ready() -> None:
    judged = readiness(window(0), min_comparisons=50)
    assert (judged.ready, judged.problems) == (False, ("0 of the 50 comparisons it needs",))
    assert judged.why == "0 of the 50 comparisons it needs"


def test_enough_matching_comparisons_are_ready() -> None:
    judged = readiness(window(50), min_comparisons=50)
    assert (judged.ready, judged.problems) == (True, ())
    assert judged.why == "50 comparisons in a row matched, no errors"
    assert readiness(window(49), min_comparisons=50).ready is False


@pytest.mark.parametrize(
    ("judged", "problem"),
    [
        (window(50, mismatches=1), "1 mismatch(es) in the last 50"),
        (window(50, new_errors=2), "2 new-path error(s) in the last 50"),
        (window(50, legacy_errors=1), "1 legacy error(s) in the last 50"),
    ],
)
def test_any_mismatch_or_error_on_either_path_is_not_ready(judged: Window, problem: str) -> None:
    assert readiness(judged, min_comparisons=50).problems == (problem,)


def test_every_problem_is_named() -> None:
    judged = readiness(window(4, mismatches=1, new_errors=1, legacy_errors=1), min_comparisons=50)
    assert judged.why == (
        "4 of the 50 comparisons it needs; 1 mismatch(es) in the last 4; "
        "1 new-path error(s) in the last 4; 1 legacy error(s) in the last 4"
    )


def test_a_minimum_of_zero_needs_no_comparisons() -> None:
    assert readiness(window(0), min_comparisons=0).ready is True
    assert readiness(window(1, mismatches=1), min_comparisons=0).ready is False


# ---------------------------------------------------------------- the gate applies it


@pytest.fixture
def parts(engine: Engine) -> Rollout:
    registry = Registry()
    registry.add_endpoint(Endpoint(READ, "read"))
    return rollout(
        engine, registry, CQRS_COMPARISON_WINDOW=5, CQRS_PROMOTION_MIN_COMPARISONS=3,
        CQRS_DEMOTION_MIN_COMPARISONS=3,
    )  # fmt: skip


def readiness_blockers(parts: Rollout) -> list[str]:
    return [b.message for b in parts.gate.blockers(READ) if b.kind == "readiness"]


def test_the_gate_refuses_with_too_few_comparisons(parts: Rollout) -> None:
    record_comparisons(parts.history, READ, 2)
    with pytest.raises(PromotionRefused) as refused:
        change(parts.changes, READ, "live", percent=10)
    assert [(b.kind, b.subject, b.message) for b in refused.value.blockers] == [
        (
            "readiness",
            READ,
            "x is not ready: 2 of the 3 comparisons it needs (see flask cqrs report)",
        )
    ]
    assert (refused.value.status, refused.value.code) == (409, "promotion_refused")
    assert parts.flags.history(READ) == []


def test_the_gate_accepts_once_there_are_enough_matching_ones(parts: Rollout) -> None:
    record_comparisons(parts.history, READ, 3)
    assert parts.gate.blockers(READ) == []
    promoted = change(parts.changes, READ, "live", percent=10)
    assert (promoted.after.stage, promoted.after.percent) == ("live", 10.0)
    assert [(e.to_stage, e.forced) for e in parts.flags.history(READ)] == [("live", False)]


def test_only_the_newest_comparisons_are_judged(parts: Rollout) -> None:
    parts.history.record(comparison(READ, "mismatch"))
    assert readiness_blockers(parts) == [
        "x is not ready: 1 of the 3 comparisons it needs; 1 mismatch(es) in the last 1 "
        "(see flask cqrs report)"
    ]
    record_comparisons(parts.history, READ, 4)  # the mismatch is still among the newest 5
    assert readiness_blockers(parts) == [
        "x is not ready: 1 mismatch(es) in the last 5 (see flask cqrs report)"
    ]
    record_comparisons(parts.history, READ, 1)  # now it has left the window
    assert readiness_blockers(parts) == []


def test_errors_and_timeouts_block_like_mismatches(parts: Rollout) -> None:
    record_comparisons(parts.history, READ, 3)
    parts.history.record(comparison(READ, "timeout", new_status=None, new_error="timed out"))
    parts.history.record(comparison(READ, "error", legacy_status=500, legacy_error="HTTP 500"))
    assert readiness_blockers(parts) == [
        "x is not ready: 1 new-path error(s) in the last 5; 1 legacy error(s) in the last 5 "
        "(see flask cqrs report)"
    ]


def test_force_overrides_the_readiness_blocker_and_is_audited(parts: Rollout) -> None:
    forced = change(parts.changes, READ, "live", percent=10, reason="incident 42", force=True)
    assert (forced.after.stage, forced.after.percent) == ("live", 10.0)
    [entry] = parts.flags.history(READ)
    assert (entry.forced, entry.reason, entry.actor) == (True, "incident 42", "ops")
