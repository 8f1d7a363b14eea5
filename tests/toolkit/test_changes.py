"""Stage changes (``rollout/changes.py``), built without a Flask app: validation first, a
change that changes nothing is not recorded, the promotion gate is asked only when a read
endpoint would serve (more of) its read models, ``only_from`` changes only from a stage."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine

from cqrs_layer import NotFound, ValidationFailed
from cqrs_layer.core.registry import Endpoint, Registry
from cqrs_layer.core.tables import flag_audit, flags
from cqrs_layer.rollout.changes import StageChanges
from cqrs_layer.rollout.flags import FlagStore
from cqrs_layer.rollout.gate import PromotionRefused

from .helpers import change, rollout, settings, table_rows

READ = "x"
WRITE = "w"


class SpyGate:
    """Stands in for the promotion gate: records what it was asked, refuses nothing."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    def check(self, endpoint: str, stage: str) -> None:
        self.asked.append((endpoint, stage))


def registry() -> Registry:
    """A read endpoint (no read models: none registered) and a write endpoint declaring
    a table no read model reads: the real gate finds only readiness to refuse."""
    declared = Registry()
    declared.add_endpoint(Endpoint(READ, "read"))
    declared.add_endpoint(Endpoint(WRITE, "write", writes=frozenset({"t"})))
    return declared


@pytest.fixture
def declared() -> Registry:
    return registry()


@pytest.fixture
def store(engine: Engine, declared: Registry) -> FlagStore:
    return FlagStore(engine, declared, settings())


@pytest.fixture
def gate() -> SpyGate:
    return SpyGate()


@pytest.fixture
def changes(declared: Registry, store: FlagStore, gate: SpyGate) -> StageChanges:
    return StageChanges(declared, store, gate)  # type: ignore[arg-type]


def audit(engine: Engine) -> list[tuple[Any, ...]]:
    return [
        (row["to_stage"], row["to_percent"], row["reason"], row["forced"])
        for row in table_rows(engine, flag_audit)
    ]


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("endpoint", "stage", "options", "error", "field", "message"),
    [
        ("nope", "shadow", {}, NotFound, "endpoint", "no wrapped endpoint named 'nope'"),
        (READ, "command", {}, ValidationFailed, "stage", "'command' is not a stage of a read"),
        (WRITE, "live", {}, ValidationFailed, "stage", "'live' is not a stage of a write"),
        (READ, "live", {"percent": "5"}, ValidationFailed, "percent", "percent must be a number"),
        (READ, "shadow", {"sample_rate": 2}, ValidationFailed, "sample_rate", "from 0 to 1"),
        (READ, "shadow", {"actor": ""}, ValidationFailed, "actor", "say who makes the change"),
        (READ, "shadow", {"reason": ""}, ValidationFailed, "reason", "say why"),
        (READ, "live", {"reason": " ", "force": True}, ValidationFailed, "reason", "say why"),
        (READ, "shadow", {"reason": "x" * 2001}, ValidationFailed, "reason", "at most 2000"),
    ],
)
def test_an_invalid_change_is_refused_before_anything_is_read_or_asked(
    engine: Engine,
    changes: StageChanges,
    gate: SpyGate,
    endpoint: str,
    stage: str,
    options: dict[str, Any],
    error: type[Exception],
    field: str,
    message: str,
) -> None:
    with pytest.raises(error) as refused:
        change(changes, endpoint, stage, **options)
    assert refused.value.status in (404, 422)  # type: ignore[attr-defined]
    assert [f["field"] for f in refused.value.fields] == [field]  # type: ignore[attr-defined]
    assert message in refused.value.message  # type: ignore[attr-defined]
    assert gate.asked == []
    assert table_rows(engine, flags) == [] and audit(engine) == []


def test_the_actor_and_reason_are_recorded_stripped(engine: Engine, changes: StageChanges) -> None:
    done = change(changes, READ, "shadow", actor="  ana ", reason="  look first\n")
    assert done.after.updated_by == "ana"
    assert audit(engine) == [("shadow", 100.0, "look first", False)]


# ---------------------------------------------------------------- nothing to change


def test_a_change_that_changes_nothing_is_not_recorded(
    engine: Engine, store: FlagStore, changes: StageChanges, gate: SpyGate
) -> None:
    # The settings already say legacy 100%, sample 1: nothing to record, not even a row.
    same = change(changes, READ, "legacy")
    assert (same.changed, same.before, same.after) == (False, store.get(READ), store.get(READ))
    assert table_rows(engine, flags) == []

    first = change(changes, READ, "live", percent=10, sample_rate=0.5, force=True)
    for options in ({}, {"percent": 10}, {"sample_rate": 0.5}, {"percent": 10.0, "force": True}):
        again = change(changes, READ, "live", **options)
        assert (again.changed, again.after) == (False, first.after)
    assert store.get(READ).version == 1
    assert audit(engine) == [("live", 10.0, "test", True)]
    assert gate.asked == []  # the forced change skipped it; the no-ops never got there


def test_an_omitted_percent_is_kept_in_the_same_stage_else_100(changes: StageChanges) -> None:
    assert change(changes, WRITE, "command", percent=20).after.percent == 20.0
    kept = change(changes, WRITE, "command", sample_rate=0.5).after
    assert (kept.stage, kept.percent, kept.sample_rate) == ("command", 20.0, 0.5)
    moved = change(changes, WRITE, "legacy").after
    assert (moved.stage, moved.percent, moved.sample_rate) == ("legacy", 100.0, 0.5)


# ---------------------------------------------------------------- when the gate is asked


@pytest.mark.parametrize(
    ("steps", "asked"),
    [
        # (stage, percent) moves of the read endpoint, from the settings' legacy 100%
        ([("shadow", None)], []),
        ([("live", 10)], [("x", "live")]),
        ([("complete", None)], [("x", "complete")]),
        ([("shadow", None), ("live", 5)], [("x", "live")]),
        ([("live", 10), ("live", 20)], [("x", "live"), ("x", "live")]),  # wider: gated
        ([("live", 10), ("live", 5)], [("x", "live")]),  # narrower: not
        ([("live", 10), ("complete", None)], [("x", "live"), ("x", "complete")]),
        ([("live", 10), ("shadow", None), ("legacy", None)], [("x", "live")]),  # back out
        # A step back from complete serves the read model to fewer: not gated.
        ([("complete", None), ("live", 50)], [("x", "complete")]),
    ],
)
def test_the_gate_is_asked_only_when_a_read_endpoint_enters_or_widens_live_or_complete(
    changes: StageChanges,
    gate: SpyGate,
    steps: list[tuple[str, float | None]],
    asked: list[tuple[str, str]],
) -> None:
    for stage, percent in steps:
        assert change(changes, READ, stage, percent=percent).changed
    assert gate.asked == asked


def test_write_endpoints_and_forced_changes_skip_the_gate(
    engine: Engine, changes: StageChanges, gate: SpyGate
) -> None:
    change(changes, WRITE, "command", percent=50)
    change(changes, WRITE, "command", percent=100)
    change(changes, READ, "live", percent=5, force=True, reason="incident 7")
    change(changes, READ, "complete", force=True, reason="incident 7")
    assert gate.asked == []
    assert audit(engine) == [
        ("command", 50.0, "test", False),
        ("command", 100.0, "test", False),
        ("live", 5.0, "incident 7", True),
        ("complete", 100.0, "incident 7", True),
    ]


def test_a_refusal_of_the_real_gate_records_nothing(engine: Engine) -> None:
    parts = rollout(engine, registry())  # no comparisons recorded: not ready
    with pytest.raises(PromotionRefused) as refused:
        change(parts.changes, READ, "live", percent=5)
    assert [b.kind for b in refused.value.blockers] == ["readiness"]
    assert table_rows(engine, flags) == [] and audit(engine) == []


# ---------------------------------------------------------------- only_from


def test_only_from_changes_only_while_the_stored_stage_is_that_one(
    engine: Engine, changes: StageChanges, gate: SpyGate
) -> None:
    skipped = change(changes, READ, "shadow", only_from="live")  # it is on legacy
    assert (skipped.changed, skipped.after.stage) == (False, "legacy")
    assert table_rows(engine, flags) == []

    change(changes, READ, "live", percent=50, force=True)
    demoted = change(changes, READ, "shadow", only_from="live", actor="auto-demotion")
    assert (demoted.changed, demoted.before.stage, demoted.after.stage) == (True, "live", "shadow")
    again = change(changes, READ, "shadow", only_from="live", actor="auto-demotion")
    assert (again.changed, again.after) == (False, demoted.after)
    # only_from never skips the gate: moving into live through it is still gated.
    change(changes, READ, "live", percent=10, only_from="shadow")
    assert gate.asked == [("x", "live")]
    assert [row[0] for row in audit(engine)] == ["live", "shadow", "live"]
