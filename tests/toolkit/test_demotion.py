"""Automatic demotion (``rollout/demotion.py``), built without a Flask app: a ``live`` read
endpoint whose newest live comparisons go wrong is moved back to ``shadow``, once."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import Engine

from cqrs_layer.core.registry import Endpoint, Registry
from cqrs_layer.rollout.demotion import ACTOR

from .helpers import Rollout, change, record_comparisons, rollout

READ = "x"


@pytest.fixture
def parts(engine: Engine) -> Rollout:
    registry = Registry()
    registry.add_endpoint(Endpoint(READ, "read"))
    return rollout(
        engine, registry, CQRS_COMPARISON_WINDOW=10, CQRS_PROMOTION_MIN_COMPARISONS=10,
        CQRS_DEMOTION_MIN_COMPARISONS=3,
    )  # fmt: skip


def go_live(parts: Rollout) -> None:
    """Forced: the gate (which would want comparisons first) is not what is tested here."""
    change(parts.changes, READ, "live", percent=50, reason="try it", force=True)


def record_live(parts: Rollout, count: int, outcome: str = "match", **fields: object) -> None:
    record_comparisons(
        parts.history, READ, count, outcome, stage="live", served_by="read-model", **fields
    )


def test_a_failing_live_window_demotes_once(
    parts: Rollout, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="cqrs.demotion")
    go_live(parts)
    record_live(parts, 3, "mismatch")

    assert parts.demotion.check(READ) is True
    flag = parts.flags.get(READ)
    assert (flag.stage, flag.percent, flag.updated_by) == ("shadow", 100.0, ACTOR)
    reason = "mismatch rate 100.0% (3/3) over the last 3 live comparisons exceeds 1.0%"
    latest = parts.flags.history(READ)[0]
    assert (latest.actor, latest.from_stage, latest.to_stage, latest.forced, latest.reason) == (
        "auto-demotion",
        "live",
        "shadow",
        False,
        reason,
    )

    # A second check (another worker, the next comparison) finds it done: nothing recorded.
    assert parts.demotion.check(READ) is False
    record_live(parts, 1, "mismatch")
    assert parts.demotion.check(READ) is False
    assert [e.actor for e in parts.flags.history(READ)] == [ACTOR, "ops"]
    assert [r.getMessage() for r in caplog.records if r.name == "cqrs.demotion"] == [
        f"auto-demoted {READ} from live to shadow: {reason}"
    ]


def test_the_new_path_error_rate_demotes_too(parts: Rollout) -> None:
    go_live(parts)
    record_live(parts, 2)
    record_live(parts, 1, "fallback", new_status=None, new_error="RuntimeError: boom")
    assert parts.demotion.check(READ) is True
    assert parts.flags.history(READ)[0].reason == (
        "new-path error rate 33.3% (1/3) over the last 3 live comparisons exceeds 5.0%"
    )


def test_too_few_comparisons_do_not_demote(parts: Rollout) -> None:
    go_live(parts)
    record_live(parts, 2, "mismatch")
    assert parts.demotion.check(READ) is False
    assert parts.flags.get(READ).stage == "live"


def test_a_clean_window_does_not_demote(parts: Rollout) -> None:
    go_live(parts)
    record_live(parts, 10)
    assert parts.demotion.check(READ) is False
    assert parts.flags.get(READ).stage == "live"


def test_only_live_endpoints_are_demoted(parts: Rollout) -> None:
    record_live(parts, 3, "mismatch")
    assert parts.demotion.check(READ) is False  # on legacy
    change(parts.changes, READ, "complete", reason="done", force=True)
    assert parts.demotion.check(READ) is False
    assert parts.flags.get(READ).stage == "complete"


def test_only_live_comparisons_since_the_promotion_are_judged(parts: Rollout) -> None:
    # Mismatches recorded in shadow do not count against live.
    record_comparisons(parts.history, READ, 3, "mismatch", stage="shadow")
    go_live(parts)
    assert parts.demotion.check(READ) is False
    # Nor do live ones from before the flag last changed: a new promotion starts afresh.
    record_live(parts, 3, "mismatch")
    assert parts.demotion.check(READ) is True
    go_live(parts)
    assert parts.demotion.check(READ) is False
    assert parts.flags.get(READ).stage == "live"
