"""The flag store: settings defaults, audited changes, the per-process cache, fork safety.

The store and the stage changes are built without a Flask app, on a plain engine; the
cache's clock is a fake one the test moves. What a request is served (the Router reading
the store) is checked on the toy app.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, request
from sqlalchemy import Engine, create_engine

from cqrs_layer import ConcurrencyConflict, NotFound, ValidationFailed
from cqrs_layer.core.settings import SettingsError
from cqrs_layer.core.tables import flag_audit, flags
from cqrs_layer.ops.context import toolkit_of
from cqrs_layer.rollout import flags as flags_module
from cqrs_layer.rollout.flags import FlagState, FlagStore
from cqrs_layer.rollout.stages import Route, in_rollout

from .helpers import (
    FakeClock,
    MakeToyApp,
    Rollout,
    change,
    counting_queries,
    rollout,
    settings,
    table_rows,
    toy_registry,
    write_flag_row,
)
from .toyapp import create_toy_app, db

READ = "library.get_book"
WRITE = "library.add_book"


def store_on(engine: Engine, **config: Any) -> FlagStore:
    return FlagStore(engine, toy_registry(), settings(**config))


@pytest.fixture
def parts(engine: Engine) -> Rollout:
    return rollout(engine, toy_registry())


@pytest.fixture
def store(parts: Rollout) -> FlagStore:
    return parts.flags


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """The flag cache's clock: it only moves when the test says so."""
    fake = FakeClock()
    monkeypatch.setattr(flags_module, "time", fake)
    return fake


# ---------------------------------------------------------------- defaults from the settings


def test_endpoints_without_a_row_follow_the_settings(engine: Engine) -> None:
    assert store_on(engine).get(READ) == FlagState(READ, "read", "legacy", 100.0, 1.0, "settings")
    shadowing = store_on(engine, CQRS_DEFAULT_READ_STAGE="shadow", CQRS_DEFAULT_SAMPLE_RATE=0.25)
    assert shadowing.get(READ) == FlagState(READ, "read", "shadow", 100.0, 0.25, "settings")
    assert shadowing.effective(READ, "read") == ("shadow", 100.0, 0.25)

    per_endpoint = store_on(engine, CQRS_ENDPOINT_STAGES={READ: "complete", WRITE: "command"})
    assert (per_endpoint.effective(READ, "read")[0], per_endpoint.effective(WRITE, "write")[0]) == (
        "complete",
        "command",
    )
    assert [(f.endpoint, f.stage, f.source) for f in per_endpoint.all()] == [
        ("library.add_book", "command", "settings"),
        ("library.get_book", "complete", "settings"),
        ("library.lend_book", "legacy", "settings"),
        ("library.rename_book", "legacy", "settings"),
    ]
    assert table_rows(engine, flags) == []  # a row is only ever written by a change


def test_a_bad_default_stage_is_refused_at_start_up(database_url: str) -> None:
    with pytest.raises(SettingsError, match=r"^CQRS_DEFAULT_READ_STAGE: .*'command'"):
        create_toy_app(
            {"SQLALCHEMY_DATABASE_URI": database_url, "CQRS_DEFAULT_READ_STAGE": "command"}
        )


# ---------------------------------------------------------------- audited changes


def test_a_change_is_stored_audited_and_seen_at_once(
    engine: Engine, parts: Rollout, clock: FakeClock
) -> None:
    store = parts.flags
    assert store.effective(READ, "read")[0] == "legacy"  # the snapshot is loaded
    before = datetime.now(UTC).replace(tzinfo=None)
    done = change(parts.changes, READ, "shadow", sample_rate=0.5, actor="ana", reason="look")
    after = datetime.now(UTC).replace(tzinfo=None)
    changed = done.after
    assert done.changed and done.before.source == "settings"
    assert (changed.stage, changed.percent, changed.sample_rate, changed.version) == (
        "shadow",
        100.0,
        0.5,
        1,
    )
    assert (changed.source, changed.updated_by) == ("database", "ana")
    assert store.get(READ) == changed
    assert store.effective(READ, "read")[0] == "shadow"  # this process: no refresh wait

    [row] = table_rows(engine, flags)
    assert {k: row[k] for k in ("endpoint", "kind", "stage", "percent", "sample_rate")} == {
        "endpoint": READ,
        "kind": "read",
        "stage": "shadow",
        "percent": 100.0,
        "sample_rate": 0.5,
    }
    [audit] = store.history(READ)
    assert audit.to_dict() | {"at": None, "id": None} == {
        "id": None,
        "endpoint": READ,
        "at": None,
        "actor": "ana",
        "from_stage": "legacy",
        "to_stage": "shadow",
        "from_percent": 100.0,
        "to_percent": 100.0,
        "reason": "look",
        "forced": False,
    }
    assert audit.at == changed.updated_at
    assert before <= audit.at <= after


def test_setting_the_same_stage_again_records_nothing(parts: Rollout) -> None:
    """Was: recorded again (a new version and audit row). A change that changes nothing
    is no longer recorded."""
    store = parts.flags
    first = change(parts.changes, WRITE, "command", percent=20, actor="ana", reason="canary")
    again = change(parts.changes, WRITE, "command", actor="bo", reason="again")
    assert (again.changed, again.after) == (False, first.after)  # 20% kept, nothing written
    assert store.get(WRITE).version == 1
    back = change(parts.changes, WRITE, "legacy", actor="bo", reason="oops")
    assert (back.after.stage, back.after.percent) == ("legacy", 100.0)  # a new stage: 100
    history = [
        (e.actor, e.from_stage, e.from_percent, e.to_stage, e.to_percent)
        for e in store.history(WRITE)
    ]
    assert history == [
        ("bo", "command", 20.0, "legacy", 100.0),
        ("ana", "legacy", 100.0, "command", 20.0),
    ]
    assert len(store.history(limit=1)) == 1


@pytest.mark.parametrize(
    ("endpoint", "stage", "options", "error", "field"),
    [
        ("library.nope", "shadow", {}, NotFound, "endpoint"),
        (READ, "command", {}, ValidationFailed, "stage"),
        (READ, "read-model", {}, ValidationFailed, "stage"),
        (WRITE, "live", {}, ValidationFailed, "stage"),
        (READ, "shadow", {"percent": 101}, ValidationFailed, "percent"),
        (READ, "shadow", {"percent": -1}, ValidationFailed, "percent"),
        (READ, "shadow", {"sample_rate": 1.5}, ValidationFailed, "sample_rate"),
        (READ, "shadow", {"actor": " "}, ValidationFailed, "actor"),
        (READ, "shadow", {"reason": ""}, ValidationFailed, "reason"),
        (READ, "shadow", {"reason": "  "}, ValidationFailed, "reason"),
        (READ, "shadow", {"reason": "x" * 2001}, ValidationFailed, "reason"),
        (READ, "shadow", {"force": True, "reason": ""}, ValidationFailed, "reason"),
    ],
)
def test_refused_changes_name_the_field_and_write_nothing(
    engine: Engine,
    parts: Rollout,
    endpoint: str,
    stage: str,
    options: dict[str, Any],
    error: type[Exception],
    field: str,
) -> None:
    with pytest.raises(error) as refused:
        change(parts.changes, endpoint, stage, **options)
    assert [f["field"] for f in refused.value.fields] == [field]  # type: ignore[attr-defined]
    assert table_rows(engine, flags) == []
    assert table_rows(engine, flag_audit) == []


def test_unknown_endpoint_lists_the_known_ones(store: FlagStore) -> None:
    with pytest.raises(NotFound) as refused:
        store.get("library.nope")
    assert refused.value.message == (
        "no wrapped endpoint named 'library.nope' (known: library.add_book, "
        "library.get_book, library.lend_book, library.rename_book)"
    )
    with pytest.raises(NotFound):
        store.history("library.nope")


def test_a_change_judged_on_stale_state_is_a_conflict(parts: Rollout) -> None:
    store = parts.flags
    change(parts.changes, READ, "shadow", actor="ana", reason="first")
    stale = store.get(READ)
    change(parts.changes, READ, "legacy", actor="bo", reason="meanwhile")
    with pytest.raises(ConcurrencyConflict, match="changed while this change was being made"):
        store.record(stale, "shadow", 100.0, 1.0, actor="ana", reason="late", forced=False)
    assert store.get(READ).stage == "legacy"
    assert len(store.history(READ)) == 2


def test_two_first_changes_racing_make_one_row(engine: Engine, store: FlagStore) -> None:
    """Both read "no row yet"; the second insert of the row is the conflict."""
    stale = store.get(READ)
    store.record(stale, "shadow", 100.0, 1.0, actor="ana", reason="first", forced=False)
    with pytest.raises(ConcurrencyConflict):
        store.record(stale, "live", 5.0, 1.0, actor="bo", reason="second", forced=True)
    assert [row["stage"] for row in table_rows(engine, flags)] == ["shadow"]
    assert len(table_rows(engine, flag_audit)) == 1


# ---------------------------------------------------------------- the per-process cache


def test_another_process_change_is_seen_once_the_refresh_interval_passes(
    engine: Engine, clock: FakeClock
) -> None:
    store = store_on(engine, CQRS_FLAG_REFRESH_SECONDS=0.3)
    assert store.effective(READ, "read")[0] == "legacy"  # loads the snapshot
    write_flag_row(engine, READ, "shadow")
    assert store.effective(READ, "read")[0] == "legacy"  # cached: no query per evaluation
    clock.advance(0.299)
    assert store.effective(READ, "read")[0] == "legacy"
    clock.advance(0.001)  # the interval has passed: the next evaluation re-reads
    assert store.effective(READ, "read")[0] == "shadow"


def test_evaluations_cost_one_query_per_refresh_interval(engine: Engine, clock: FakeClock) -> None:
    store = store_on(engine, CQRS_FLAG_REFRESH_SECONDS=0.2)
    store.effective(READ, "read")
    with counting_queries(engine) as statements:
        for _ in range(1000):
            store.effective(READ, "read")
            store.effective(WRITE, "write")
        assert statements == []
        clock.advance(0.2)
        for _ in range(1000):
            store.effective(READ, "read")
    assert len(statements) == 1
    assert "FROM cqrs_flags" in statements[0]


def test_a_stage_unknown_to_the_kind_serves_legacy(
    engine: Engine, store: FlagStore, caplog: pytest.LogCaptureFixture
) -> None:
    write_flag_row(engine, READ, "bogus")
    store.invalidate()
    with caplog.at_level(logging.ERROR):
        assert store.effective(READ, "read") == ("legacy", 100.0, 0.0)
        assert store.effective(READ, "read") == ("legacy", 100.0, 0.0)
    assert [r.getMessage() for r in caplog.records] == [
        "unknown stage 'bogus' for read endpoint library.get_book; serving legacy"
    ]


def test_without_the_flags_table_the_settings_still_serve(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    empty = create_engine(f"sqlite:///{tmp_path}/empty.db")
    store = store_on(empty, CQRS_DEFAULT_READ_STAGE="shadow")
    with caplog.at_level(logging.ERROR):
        assert store.effective(READ, "read")[0] == "shadow"
        store.invalidate()
        assert store.effective(READ, "read")[0] == "shadow"
    assert [r.getMessage() for r in caplog.records] == [
        "cannot read the flags table; using the last known flags"
    ]
    empty.dispose()


def test_a_forked_process_reloads_instead_of_using_its_parents_snapshot(
    engine: Engine, store: FlagStore, clock: FakeClock
) -> None:
    # The clock never moves: only the fork can make this store reload.
    assert store.effective(READ, "read")[0] == "legacy"
    write_flag_row(engine, READ, "shadow")
    assert store.effective(READ, "read")[0] == "legacy"  # the parent keeps its snapshot
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        try:
            seen = {"stage": store.effective(READ, "read")[0], "pid": os.getpid()}
            os.write(write_end, json.dumps(seen).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    _, status = os.waitpid(child, 0)
    with os.fdopen(read_end) as pipe:
        seen = json.loads(pipe.read())
    assert (status, seen) == (0, {"stage": "shadow", "pid": child})
    assert store.effective(READ, "read")[0] == "legacy"
    # The parent's pooled connection still works: the child did not close it.
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT 1").scalar() == 1


# ---------------------------------------------------------------- what a request is served


def test_route_applies_the_stored_percentage_to_the_subject(toy_app: Flask) -> None:
    toolkit = toolkit_of(toy_app)
    change(toolkit, READ, "live", percent=30, sample_rate=0, force=True)
    for subject in (f"user-{n}" for n in range(50)):
        headers = {"X-CQRS-Subject": subject}
        with toy_app.test_request_context("/", headers=headers):
            expected = in_rollout(READ, subject, 30)
            assert toolkit.router.route(READ, "read", request) == Route(
                "live", expected, False, True
            )


def test_a_flag_evaluation_is_served_from_the_snapshot(toy_app: Flask, clock: FakeClock) -> None:
    """Was: timed (under 50 µs each). Now the reasons it is cheap are checked instead:
    no query while the snapshot is fresh (the clock stands still), and no object built
    per request (every possible decision is built once)."""
    toolkit = toolkit_of(toy_app)
    change(toolkit, READ, "live", percent=50, force=True)
    with toy_app.test_request_context("/", headers={"X-CQRS-Subject": "alice"}):
        first_live = toolkit.router.route(READ, "read", request)  # warms the snapshot
        first_default = toolkit.router.route(WRITE, "write", request)
        with counting_queries(db.engine) as statements:
            live = {id(toolkit.router.route(READ, "read", request)) for _ in range(20_000)}
            default = {id(toolkit.router.route(WRITE, "write", request)) for _ in range(20_000)}
    assert statements == []
    assert (live, default) == ({id(first_live)}, {id(first_default)})
    assert first_live == Route("live", in_rollout(READ, "alice", 50), True, True)
    assert first_default == Route("legacy", False, False, False)


def broken_subject_key(_request: Any) -> str:
    raise RuntimeError("the host's subject function is broken")


def test_a_failing_evaluation_serves_legacy_instead_of_failing_the_request(
    make_toy_app: MakeToyApp, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_toy_app(CQRS_SUBJECT_KEY=broken_subject_key)
    toolkit = toolkit_of(app)
    change(toolkit, READ, "live", percent=50, force=True)
    with app.test_request_context("/"), caplog.at_level(logging.ERROR):
        assert toolkit.router.route(READ, "read", request) == Route("legacy", False, False, False)
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR] == [
        "flag evaluation failed for library.get_book; serving legacy"
    ]
