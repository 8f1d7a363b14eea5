"""The promotion gate on the toy app: drift, readiness and legacy writers block
live/complete. Readiness alone (on a registry without an app) is in test_readiness.py.

Unless a test is about readiness, the read endpoint is first given the matching
comparisons readiness wants, so the blockers left are the ones the test is about.
"""

from __future__ import annotations

import pytest
from flask import Flask

from cqrs_layer import CQRS, allow_unguarded_writes
from cqrs_layer.core.tables import flag_audit, flags
from cqrs_layer.ops.context import Toolkit
from cqrs_layer.rollout.gate import PromotionRefused
from cqrs_layer.schema import install_capture, remove_capture
from cqrs_layer.write.writers import WriterLog

from .helpers import change, comparison, make_ready
from .toyapp import GetBook, book_shelf, committed_rows, db, shelf_model

READ = "library.get_book"
WRITERS = ("library.add_book", "library.lend_book", "library.rename_book")


@pytest.fixture
def ready(toolkit: Toolkit) -> Toolkit:
    make_ready(toolkit, READ)
    return toolkit


def writers_on_command(toolkit: Toolkit, percent: float = 100) -> None:
    for writer in WRITERS:
        change(toolkit, writer, "command", percent=percent, reason="events on")


def refusal(toolkit: Toolkit, stage: str = "live", **options: float) -> PromotionRefused:
    with pytest.raises(PromotionRefused) as refused:
        change(toolkit, READ, stage, reason="go", **options)
    return refused.value


def blocking(refused: PromotionRefused, kind: str = "legacy-writer") -> list[str]:
    return [blocker.subject for blocker in refused.blockers if blocker.kind == kind]


def test_promotion_is_refused_naming_the_writers_still_on_legacy(ready: Toolkit) -> None:
    refused = refusal(ready)
    assert [(b.kind, b.message) for b in refused.blockers] == [
        ("legacy-writer", "write endpoint library.add_book writes books and is still on legacy"),
        (
            "legacy-writer",
            "write endpoint library.lend_book writes books, loans and is still on legacy",
        ),
        (
            "legacy-writer",
            "write endpoint library.rename_book writes books and is still on legacy",
        ),
    ]
    assert blocking(refused) == list(WRITERS)
    assert (refused.status, refused.code) == (409, "promotion_refused")
    assert refused.message.startswith("refused to move library.get_book to live: write endpoint")
    assert committed_rows(flags) == [] and committed_rows(flag_audit) == []
    assert blocking(refusal(ready, "complete")) == list(WRITERS)


def test_without_comparisons_readiness_blocks_too(toolkit: Toolkit) -> None:
    """New: zero comparisons is not ready, and the gate says so with the other blockers."""
    refused = refusal(toolkit)
    assert [(b.kind, b.subject) for b in refused.blockers] == [
        ("readiness", READ),
        *[("legacy-writer", writer) for writer in WRITERS],
    ]
    assert refused.blockers[0].message == (
        "library.get_book is not ready: 0 of the 50 comparisons it needs (see flask cqrs report)"
    )


def test_promotion_passes_once_every_writer_is_fully_on_command(ready: Toolkit) -> None:
    writers_on_command(ready, percent=50)
    assert [b.message for b in refusal(ready).blockers] == [
        "write endpoint library.add_book writes books and is on command for only 50%",
        "write endpoint library.lend_book writes books, loans and is on command for only 50%",
        "write endpoint library.rename_book writes books and is on command for only 50%",
    ]
    writers_on_command(ready, percent=100)
    assert change(ready, READ, "live", percent=10, reason="canary").after.stage == "live"
    assert change(ready, READ, "complete", reason="done").after.stage == "complete"
    assert [(e.to_stage, e.forced) for e in ready.flags.history(READ)] == [
        ("complete", False),
        ("live", False),
    ]


def test_drift_and_mismatches_block_and_are_all_reported_at_once(toolkit: Toolkit) -> None:
    writers_on_command(toolkit)
    with allow_unguarded_writes(), db.engine.begin() as connection:
        # A write that skipped the events: the read model misses it.
        connection.exec_driver_sql(
            "INSERT INTO books (id, title, copies, version) VALUES (1, 'Dune', 2, 1)"
        )
        connection.execute(book_shelf.insert().values(book_id=9, title="X", available=1, on_loan=0))
    for outcome in ("match", "mismatch", "mismatch"):
        toolkit.history.record(comparison(READ, outcome))
    assert [(b.kind, b.subject, b.message) for b in refusal(toolkit).blockers] == [
        (
            "drift",
            "book_shelf",
            "read model book_shelf drifts from its source (missing 1, extra 1, different 0; "
            "run flask cqrs verify --repair)",
        ),
        (
            "readiness",
            READ,
            "library.get_book is not ready: 3 of the 50 comparisons it needs; "
            "2 mismatch(es) in the last 3 (see flask cqrs report)",
        ),
    ]


def test_a_learned_writer_without_a_command_path_blocks(toy_app: Flask, ready: Toolkit) -> None:
    writers_on_command(ready)
    with toy_app.test_request_context("/library/books/1/card"):
        ready.guard.check({"books": None})  # what the guard does when that view writes books
    assert [b.message for b in refusal(ready).blockers] == [
        "endpoint library.book_card writes books outside a command and has no command path"
    ]


def test_a_write_endpoint_with_unknown_tables_blocks_until_declared(
    toy_app: Flask, ready: Toolkit
) -> None:
    writers_on_command(ready)
    CQRS().command_endpoint("library.list_books", build=lambda r, a: None, app=toy_app)
    assert [b.message for b in refusal(ready).blockers] == [
        "write endpoint library.list_books may write its source tables (declare writes=[...]) "
        "and is still on legacy"
    ]


def test_read_models_default_to_all_and_unknown_ones_block(
    toy_app: Flask, toolkit: Toolkit
) -> None:
    cqrs = CQRS()
    build = lambda r, a: GetBook(book_id=1)  # noqa: E731
    cqrs.query_endpoint("library.book_card", build=build, app=toy_app)
    cqrs.query_endpoint("library.list_books", build=build, read_models=["nope"], app=toy_app)
    make_ready(toolkit, "library.book_card")
    make_ready(toolkit, "library.list_books")
    with pytest.raises(PromotionRefused) as undeclared:
        change(toolkit, "library.book_card", "live", reason="go")
    assert blocking(undeclared.value) == list(WRITERS)  # book_shelf's writers
    writers_on_command(toolkit)
    with pytest.raises(PromotionRefused) as unknown:
        change(toolkit, "library.list_books", "live", reason="go")
    assert [(b.kind, b.message) for b in unknown.value.blockers] == [
        ("unknown-read-model", "read model nope is not registered")
    ]


def test_force_overrides_the_gate_and_is_audited(toolkit: Toolkit) -> None:
    forced = change(toolkit, READ, "live", percent=10, reason="incident 42", force=True)
    assert (forced.after.stage, forced.after.percent) == ("live", 10.0)
    [entry] = toolkit.flags.history(READ)
    assert (entry.forced, entry.reason, entry.actor) == (True, "incident 42", "ops")


def test_only_moves_into_or_wider_within_live_and_complete_are_gated(toolkit: Toolkit) -> None:
    change(toolkit, READ, "live", percent=10, force=True)
    # The same again (now: nothing to record), narrower, or back out: no gate.
    again = change(toolkit, READ, "live", reason="again")
    assert (again.changed, again.after.percent) == (False, 10)
    assert change(toolkit, READ, "live", percent=5, reason="narrower").after.percent == 5
    demoted = change(toolkit, READ, "shadow", actor="auto-demotion", reason="bad")
    assert demoted.after.stage == "shadow"
    assert change(toolkit, READ, "legacy", reason="off").after.stage == "legacy"
    change(toolkit, READ, "live", percent=10, force=True)
    assert blocking(refusal(toolkit, percent=20)) == list(WRITERS)  # wider: gated
    assert change(toolkit, WRITERS[0], "command", reason="w").after.stage == "command"


def test_with_change_capture_installed_writers_need_not_move_first(ready: Toolkit) -> None:
    """The shelf kept exact whatever writes books and loans: the writers still on legacy
    no longer block, and the gate still knows them."""
    with db.engine.begin() as connection:
        install_capture(connection, shelf_model)
    try:
        promoted = change(ready, READ, "live", reason="capture keeps it exact")
        assert (promoted.changed, promoted.after.stage) == (True, "live")
        assert sorted(ready.gate.writers_of({"books", "loans"})) == list(WRITERS)
    finally:
        with db.engine.begin() as connection:
            remove_capture(connection, shelf_model)


def test_writers_learned_in_another_process_block_here_too(toy_app: Flask, ready: Toolkit) -> None:
    """The guard of every process writes what it learns to cqrs_writers; the gate of any
    process (the CLI's, another worker's) reads it from there."""
    writers_on_command(ready)
    WriterLog(ready.engine).record("library.book_card", "books", inside_command=False)
    assert ready.guard.learned() == {}  # not learned in this process
    assert [b.message for b in refusal(ready).blockers] == [
        "endpoint library.book_card writes books outside a command and has no command path"
    ]
