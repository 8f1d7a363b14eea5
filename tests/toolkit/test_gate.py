"""The promotion gate: drift, mismatches and legacy writers block live/complete."""

from __future__ import annotations

import pytest
from flask import Flask

from cqrs_layer import CQRS, allow_unguarded_writes
from cqrs_layer.comparisons import ComparisonRecord, record
from cqrs_layer.flags import FlagStore
from cqrs_layer.gate import PromotionRefused
from cqrs_layer.tables import flag_audit, flags

from .toyapp import GetBook, book_shelf, committed_rows, db

READ = "library.get_book"
WRITERS = ("library.add_book", "library.lend_book", "library.rename_book")


@pytest.fixture
def store(toy_app: Flask) -> FlagStore:
    flag_store: FlagStore = toy_app.extensions["cqrs"].flags
    return flag_store


def writers_on_command(store: FlagStore, percent: float = 100) -> None:
    for writer in WRITERS:
        store.set_stage(writer, "command", percent=percent, actor="ops", reason="events on")


def refusal(store: FlagStore, stage: str = "live", **options: float) -> PromotionRefused:
    with pytest.raises(PromotionRefused) as refused:
        store.set_stage(READ, stage, actor="ops", reason="go", **options)  # type: ignore[arg-type]
    return refused.value


def test_promotion_is_refused_naming_the_writers_still_on_legacy(store: FlagStore) -> None:
    refused = refusal(store)
    assert [b.message for b in refused.blockers] == [
        "write endpoint library.add_book writes books and is still on legacy",
        "write endpoint library.lend_book writes books, loans and is still on legacy",
        "write endpoint library.rename_book writes books and is still on legacy",
    ]
    assert refused.blocking_endpoints == list(WRITERS)
    assert (refused.status, refused.code) == (409, "promotion_refused")
    assert refused.message.startswith("refused to move library.get_book to live: write endpoint")
    assert committed_rows(flags) == [] and committed_rows(flag_audit) == []
    assert refusal(store, "complete").blocking_endpoints == list(WRITERS)


def test_promotion_passes_once_every_writer_is_fully_on_command(store: FlagStore) -> None:
    writers_on_command(store, percent=50)
    assert [b.message for b in refusal(store).blockers] == [
        "write endpoint library.add_book writes books and is on command for only 50%",
        "write endpoint library.lend_book writes books, loans and is on command for only 50%",
        "write endpoint library.rename_book writes books and is on command for only 50%",
    ]
    writers_on_command(store, percent=100)
    assert store.set_stage(READ, "live", percent=10, actor="ops", reason="canary").stage == "live"
    assert store.set_stage(READ, "complete", actor="ops", reason="done").stage == "complete"
    assert [(e.to_stage, e.forced) for e in store.history(READ)] == [
        ("complete", False),
        ("live", False),
    ]


def test_drift_and_mismatches_block_and_are_all_reported_at_once(store: FlagStore) -> None:
    writers_on_command(store)
    with allow_unguarded_writes(), db.engine.begin() as connection:
        # A write that skipped the events: the read model misses it.
        connection.exec_driver_sql(
            "INSERT INTO books (id, title, copies, version) VALUES (1, 'Dune', 2, 1)"
        )
        connection.execute(book_shelf.insert().values(book_id=9, title="X", available=1, on_loan=0))
        for outcome in ("match", "mismatch", "mismatch"):
            record(
                connection,
                ComparisonRecord(READ, "shadow", "legacy", outcome, "GET", "/library/books/1"),
                history_limit=1000,
            )
    assert [(b.kind, b.subject, b.message) for b in refusal(store).blockers] == [
        (
            "drift",
            "book_shelf",
            "read model book_shelf drifts from its source (missing 1, extra 1, different 0; "
            "run flask cqrs verify --repair)",
        ),
        (
            "mismatches",
            READ,
            "2 of the last 3 comparisons of library.get_book mismatched (see flask cqrs report)",
        ),
    ]


def test_a_learned_writer_without_a_command_path_blocks(toy_app: Flask, store: FlagStore) -> None:
    writers_on_command(store)
    state = toy_app.extensions["cqrs"]
    with toy_app.test_request_context("/library/books/1/card"):
        state.guard.check(["books"])  # what the guard does when that view writes books
    assert [b.message for b in refusal(store).blockers] == [
        "endpoint library.book_card writes books outside a command and has no command path"
    ]


def test_a_write_endpoint_with_unknown_tables_blocks_until_declared(
    toy_app: Flask, store: FlagStore
) -> None:
    writers_on_command(store)
    CQRS().command_endpoint("library.list_books", build=lambda r, a: None, app=toy_app)
    assert [b.message for b in refusal(store).blockers] == [
        "write endpoint library.list_books may write its source tables (declare writes=[...]) "
        "and is still on legacy"
    ]


def test_read_models_default_to_all_and_unknown_ones_block(
    toy_app: Flask, store: FlagStore
) -> None:
    cqrs = CQRS()
    build = lambda r, a: GetBook(book_id=1)  # noqa: E731
    cqrs.query_endpoint("library.book_card", build=build, app=toy_app)
    cqrs.query_endpoint("library.list_books", build=build, read_models=["nope"], app=toy_app)
    with pytest.raises(PromotionRefused) as undeclared:
        store.set_stage("library.book_card", "live", actor="ops", reason="go")
    assert undeclared.value.blocking_endpoints == list(WRITERS)  # book_shelf's writers
    writers_on_command(store)
    with pytest.raises(PromotionRefused) as unknown:
        store.set_stage("library.list_books", "live", actor="ops", reason="go")
    assert [b.message for b in unknown.value.blockers] == ["read model nope is not registered"]


def test_force_overrides_the_gate_and_is_audited(store: FlagStore) -> None:
    forced = store.set_stage(
        READ, "live", percent=10, actor="ops", reason="incident 42", force=True
    )
    assert (forced.stage, forced.percent) == ("live", 10.0)
    [entry] = store.history(READ)
    assert (entry.forced, entry.reason, entry.actor) == (True, "incident 42", "ops")


def test_only_moves_into_or_wider_within_live_and_complete_are_gated(store: FlagStore) -> None:
    store.set_stage(READ, "live", percent=10, actor="ops", reason="r", force=True)
    # The same again, narrower, or back out: no gate.
    assert store.set_stage(READ, "live", actor="ops", reason="again").percent == 10
    assert store.set_stage(READ, "live", percent=5, actor="ops", reason="narrower").percent == 5
    assert store.set_stage(READ, "shadow", actor="auto-demotion", reason="bad").stage == "shadow"
    assert store.set_stage(READ, "legacy", actor="ops", reason="off").stage == "legacy"
    store.set_stage(READ, "live", percent=10, actor="ops", reason="r", force=True)
    assert refusal(store, percent=20).blocking_endpoints == list(WRITERS)  # wider: gated
    assert store.set_stage(WRITERS[0], "command", actor="ops", reason="w").stage == "command"
