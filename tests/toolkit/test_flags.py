"""The flag store: config defaults, audited changes, the per-process cache, fork safety."""

from __future__ import annotations

import json
import logging
import os
import time
import timeit
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, request
from sqlalchemy import Engine, event, insert

from cqrs_layer import ConcurrencyConflict, NotFound, ValidationFailed
from cqrs_layer.flags import FlagState, FlagStore
from cqrs_layer.rollout import Route, in_rollout
from cqrs_layer.tables import flag_audit, flags

from .toyapp import committed_rows, create_toy_app, db

READ = "library.get_book"
WRITE = "library.add_book"


@pytest.fixture
def store(toy_app: Flask) -> FlagStore:
    flag_store: FlagStore = toy_app.extensions["cqrs"].flags
    return flag_store


def write_row_elsewhere(stage: str, endpoint: str = READ, percent: float = 100.0) -> None:
    """A change committed by another process: this process's cache knows nothing of it."""
    with db.engine.begin() as connection:
        connection.execute(
            insert(flags).values(
                endpoint=endpoint,
                kind="read",
                stage=stage,
                percent=percent,
                sample_rate=1.0,
                updated_at=datetime.now(UTC).replace(tzinfo=None),
                updated_by="elsewhere",
                version=1,
            )
        )


@contextmanager
def counting_queries(engine: Engine) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


# ---------------------------------------------------------------- defaults from config


def test_endpoints_without_a_row_follow_the_config(toy_app: Flask, store: FlagStore) -> None:
    assert store.get(READ) == FlagState(READ, "read", "legacy", 100.0, 1.0, "config")
    toy_app.config["CQRS_DEFAULT_READ_MODE"] = "shadow"
    toy_app.config["CQRS_DEFAULT_SAMPLE_RATE"] = 0.25
    assert store.get(READ) == FlagState(READ, "read", "shadow", 100.0, 0.25, "config")
    toy_app.config["CQRS_ENDPOINT_MODES"] = {READ: "read-model", WRITE: "command"}
    assert (store.mode_for(READ, "read"), store.mode_for(WRITE, "write")) == (
        "complete",
        "command",
    )
    assert [(f.endpoint, f.stage, f.source) for f in store.all()] == [
        ("library.add_book", "command", "config"),
        ("library.get_book", "complete", "config"),
        ("library.lend_book", "legacy", "config"),
        ("library.rename_book", "legacy", "config"),
    ]


def test_a_bad_default_stage_is_refused_at_start_up(database_url: str) -> None:
    with pytest.raises(ValueError, match="CQRS_DEFAULT_READ_MODE is 'command'; use one of legacy"):
        create_toy_app(
            {"SQLALCHEMY_DATABASE_URI": database_url, "CQRS_DEFAULT_READ_MODE": "command"}
        )


# ---------------------------------------------------------------- audited changes


def test_a_change_is_stored_audited_and_seen_at_once(store: FlagStore) -> None:
    changed = store.set_stage(READ, "shadow", sample_rate=0.5, actor="ana", reason="compare first")
    assert (changed.stage, changed.percent, changed.sample_rate, changed.version) == (
        "shadow",
        100.0,
        0.5,
        1,
    )
    assert (changed.source, changed.updated_by) == ("database", "ana")
    assert store.get(READ) == changed
    assert store.mode_for(READ, "read") == "shadow"  # this process: no refresh wait

    [row] = committed_rows(flags)
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
        "reason": "compare first",
        "forced": False,
    }
    assert abs((datetime.now(UTC).replace(tzinfo=None) - audit.at).total_seconds()) < 5


def test_setting_the_same_stage_again_is_recorded_and_harmless(store: FlagStore) -> None:
    store.set_stage(WRITE, "command", percent=20, actor="ana", reason="canary")
    again = store.set_stage(WRITE, "command", actor="bo", reason="again")
    assert (again.stage, again.percent, again.version) == ("command", 20.0, 2)  # 20% kept
    back = store.set_stage(WRITE, "legacy", actor="bo", reason="oops")
    assert (back.stage, back.percent) == ("legacy", 100.0)  # a new stage: 100 unless told
    history = [
        (e.actor, e.from_stage, e.from_percent, e.to_stage, e.to_percent)
        for e in store.history(WRITE)
    ]
    assert history == [
        ("bo", "command", 20.0, "legacy", 100.0),
        ("bo", "command", 20.0, "command", 20.0),
        ("ana", "legacy", 100.0, "command", 20.0),
    ]
    assert len(store.history(limit=2)) == 2


@pytest.mark.parametrize(
    ("endpoint", "stage", "options", "error", "field"),
    [
        ("library.nope", "shadow", {}, NotFound, "endpoint"),
        (READ, "command", {}, ValidationFailed, "stage"),
        (WRITE, "live", {}, ValidationFailed, "stage"),
        (READ, "shadow", {"percent": 101}, ValidationFailed, "percent"),
        (READ, "shadow", {"percent": -1}, ValidationFailed, "percent"),
        (READ, "shadow", {"sample_rate": 1.5}, ValidationFailed, "sample_rate"),
        (READ, "shadow", {"actor": " "}, ValidationFailed, "actor"),
        (READ, "shadow", {"force": True, "reason": ""}, ValidationFailed, "reason"),
    ],
)
def test_refused_changes_name_the_field_and_write_nothing(
    store: FlagStore,
    endpoint: str,
    stage: str,
    options: dict[str, Any],
    error: type[Exception],
    field: str,
) -> None:
    kwargs: dict[str, Any] = {"actor": "ana", "reason": "try"} | options
    with pytest.raises(error) as refused:
        store.set_stage(endpoint, stage, **kwargs)
    assert [f["field"] for f in refused.value.fields] == [field]  # type: ignore[attr-defined]
    assert committed_rows(flags) == []
    assert committed_rows(flag_audit) == []


def test_unknown_endpoint_lists_the_known_ones(store: FlagStore) -> None:
    with pytest.raises(NotFound) as refused:
        store.get("library.nope")
    assert refused.value.message == (
        "no wrapped endpoint named 'library.nope' (known: library.add_book, "
        "library.get_book, library.lend_book, library.rename_book)"
    )


def test_a_change_judged_on_stale_state_is_a_conflict(store: FlagStore) -> None:
    store.set_stage(READ, "shadow", actor="ana", reason="first")
    stale = store.get(READ)
    store.set_stage(READ, "legacy", actor="bo", reason="meanwhile")
    with pytest.raises(ConcurrencyConflict, match="changed while this change was being made"):
        store._write(db.engine, stale, "shadow", 100.0, 1.0, "ana", "late", False)
    assert store.get(READ).stage == "legacy"
    assert len(store.history(READ)) == 2


# ---------------------------------------------------------------- the per-process cache


def test_another_process_change_is_seen_within_the_refresh_interval(
    toy_app: Flask, store: FlagStore
) -> None:
    toy_app.config["CQRS_FLAG_REFRESH_SECONDS"] = 0.3
    assert store.mode_for(READ, "read") == "legacy"  # loads the snapshot
    write_row_elsewhere("shadow")
    committed = time.monotonic()
    assert store.mode_for(READ, "read") == "legacy"  # cached: no query per evaluation
    while store.mode_for(READ, "read") != "shadow":
        assert time.monotonic() - committed < 1.0
        time.sleep(0.005)
    assert 0.2 < time.monotonic() - committed < 0.5


def test_evaluations_cost_one_query_per_refresh_interval(toy_app: Flask, store: FlagStore) -> None:
    toy_app.config["CQRS_FLAG_REFRESH_SECONDS"] = 0.2
    store.mode_for(READ, "read")
    with counting_queries(db.engine) as statements, toy_app.test_request_context("/"):
        for _ in range(1000):
            store.route(READ, "read", request)
        assert statements == []
        time.sleep(0.25)
        for _ in range(1000):
            store.route(READ, "read", request)
    assert len(statements) == 1
    assert "FROM cqrs_flags" in statements[0]


def test_route_applies_the_stored_percentage_to_the_subject(
    toy_app: Flask, store: FlagStore
) -> None:
    store.set_stage(READ, "live", percent=30, sample_rate=0, actor="a", reason="r", force=True)
    for subject in (f"user-{n}" for n in range(50)):
        headers = {"X-CQRS-Subject": subject}
        with toy_app.test_request_context("/", headers=headers):
            expected = in_rollout(READ, subject, 30)
            assert store.route(READ, "read", request) == Route("live", expected, False, True)


def test_a_stage_unknown_to_the_kind_serves_legacy(
    toy_app: Flask, store: FlagStore, caplog: pytest.LogCaptureFixture
) -> None:
    write_row_elsewhere("bogus")
    store.invalidate()
    with toy_app.test_request_context("/"), caplog.at_level(logging.ERROR):
        assert store.route(READ, "read", request) == Route("legacy", False, False, False)
        assert store.route(READ, "read", request) == Route("legacy", False, False, False)
    assert [r.getMessage() for r in caplog.records] == [
        "unknown stage 'bogus' for read endpoint library.get_book; serving legacy"
    ]


def test_without_the_flags_table_the_config_still_serves(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_toy_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/empty.db",
            "CQRS_DEFAULT_READ_MODE": "shadow",
        }
    )
    flag_store: FlagStore = app.extensions["cqrs"].flags
    with app.test_request_context("/"), caplog.at_level(logging.ERROR):
        assert flag_store.route(READ, "read", request).stage == "shadow"
        flag_store.invalidate()
        assert flag_store.route(READ, "read", request).stage == "shadow"
    assert [r.getMessage() for r in caplog.records] == [
        "cannot read the flags table; using the last known flags"
    ]
    with app.app_context():
        db.engine.dispose()


def test_a_forked_process_reloads_instead_of_using_its_parents_snapshot(
    toy_app: Flask, store: FlagStore
) -> None:
    toy_app.config["CQRS_FLAG_REFRESH_SECONDS"] = 3600  # only the fork can force a reload
    assert store.mode_for(READ, "read") == "legacy"
    write_row_elsewhere("shadow")
    assert store.mode_for(READ, "read") == "legacy"  # the parent keeps its snapshot
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        try:
            seen = {"stage": store.mode_for(READ, "read"), "pid": os.getpid()}
            os.write(write_end, json.dumps(seen).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    _, status = os.waitpid(child, 0)
    with os.fdopen(read_end) as pipe:
        seen = json.loads(pipe.read())
    assert (status, seen) == (0, {"stage": "shadow", "pid": child})
    assert store.mode_for(READ, "read") == "legacy"
    # The parent's pooled connection still works: the child did not close it.
    with db.engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT 1").scalar() == 1


# ---------------------------------------------------------------- cost per evaluation


def test_a_flag_evaluation_costs_microseconds(toy_app: Flask, store: FlagStore) -> None:
    store.set_stage(READ, "live", percent=50, actor="a", reason="r", force=True)
    with toy_app.test_request_context("/", headers={"X-CQRS-Subject": "alice"}):
        store.route(READ, "read", request)  # warm the snapshot
        runs = 20_000
        live = min(timeit.repeat(lambda: store.route(READ, "read", request), number=runs, repeat=3))
        default = min(
            timeit.repeat(lambda: store.route(WRITE, "write", request), number=runs, repeat=3)
        )
    live_us, default_us = live / runs * 1e6, default / runs * 1e6
    print(f"flag-eval: live 50% {live_us:.2f} us, config default {default_us:.2f} us")
    assert live_us < 50 and default_us < 50  # generous: CI machines are noisy


def broken_subject_key(_request: Any) -> str:
    raise RuntimeError("the host's subject function is broken")


def test_a_failing_evaluation_serves_legacy_instead_of_failing_the_request(
    toy_app: Flask, store: FlagStore, caplog: pytest.LogCaptureFixture
) -> None:
    toy_app.config["CQRS_SUBJECT_KEY"] = broken_subject_key
    store.set_stage(READ, "live", percent=50, actor="a", reason="r", force=True)
    with toy_app.test_request_context("/"), caplog.at_level(logging.ERROR):
        assert store.route(READ, "read", request) == Route("legacy", False, False, False)
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR] == [
        "flag evaluation failed for library.get_book; serving legacy"
    ]
