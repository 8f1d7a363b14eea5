"""One transaction per command: an event exists iff its transaction committed."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cqrs_layer import (
    CQRS,
    Command,
    ConcurrencyConflict,
    Projection,
    ProjectionContext,
    UnitOfWork,
    allow_unguarded_writes,
    signals,
)
from cqrs_layer.core.tables import outbox, projection_tracking
from cqrs_layer.ops.context import toolkit_of

from .helpers import change
from .toyapp import AddBook, Book, BookAdded, book_shelf, committed_rows, count_rows, db


def dispatch(app: Flask, command: Command) -> Any:
    return toolkit_of(app).command_bus.dispatch(command)


def test_a_command_commits_its_writes_events_and_projection_together(toy_app: Flask) -> None:
    assert dispatch(toy_app, AddBook(title="Dune", copies=2)) == {
        "id": 1,
        "title": "Dune",
        "copies": 2,
    }
    assert committed_rows(Book.__table__) == [{"id": 1, "title": "Dune", "copies": 2, "version": 1}]
    [event] = committed_rows(outbox)
    assert (event["position"], event["event_type"], event["aggregate_type"]) == (
        1,
        "library.BookAdded",
        "book",
    )
    assert (event["aggregate_id"], event["payload"]) == (
        "1",
        {"id": 1, "title": "Dune", "copies": 2},
    )
    assert len(event["correlation_id"]) == 32  # made up outside a request
    assert committed_rows(book_shelf) == [
        {"book_id": 1, "title": "Dune", "available": 2, "on_loan": 0}
    ]
    assert committed_rows(projection_tracking) == [{"projection": "book_shelf", "position": 1}]


class AddTwoBooksThenFail(Command):
    title: str


def test_a_failing_handler_leaves_no_write_and_no_event(toy_app: Flask) -> None:
    def handler(command: AddTwoBooksThenFail, uow: UnitOfWork) -> None:
        uow.session.add(Book(title=command.title, copies=1))
        uow.session.flush()
        uow.record(BookAdded(id=1, title=command.title, copies=1))
        raise RuntimeError("disk on fire")

    toolkit_of(toy_app).command_bus.register(AddTwoBooksThenFail, handler)
    with pytest.raises(RuntimeError, match="disk on fire"):  # not ours: propagates unchanged
        dispatch(toy_app, AddTwoBooksThenFail(title="Dune"))
    assert count_rows(Book.__table__) == 0
    assert count_rows(outbox) == 0
    assert not db.session().in_transaction()


def test_a_failing_projection_aborts_the_command(toy_app: Flask) -> None:
    broken = Projection("broken")

    @broken.on(BookAdded)
    def _explode(event: BookAdded, ctx: ProjectionContext) -> None:
        raise ValueError(f"cannot project {event.title}")

    CQRS(db=db).register_projection(broken, app=toy_app)
    with pytest.raises(ValueError, match="cannot project Dune"):
        dispatch(toy_app, AddBook(title="Dune", copies=1))
    for table in (Book.__table__, outbox, book_shelf, projection_tracking):
        assert count_rows(table) == 0, table.name


def test_events_recorded_runs_before_commit_and_committed_after(toy_app: Flask) -> None:
    seen: list[tuple[str, int, list[str]]] = []

    def recorded(sender: Flask, events: list[Any], session: Session, **extra: Any) -> None:
        assert session.in_transaction()
        seen.append(("recorded", count_rows(outbox), [e.event_type for e in events]))

    def committed(sender: Flask, events: list[Any], **extra: Any) -> None:
        seen.append(("committed", count_rows(outbox), [e.event_type for e in events]))

    with (
        signals.events_recorded.connected_to(recorded, sender=toy_app),
        signals.events_committed.connected_to(committed, sender=toy_app),
    ):
        dispatch(toy_app, AddBook(title="Dune", copies=1))
    assert seen == [
        ("recorded", 0, ["library.BookAdded"]),  # other connections do not see it yet
        ("committed", 1, ["library.BookAdded"]),
    ]


def test_committed_receivers_are_not_called_when_the_command_fails(toy_app: Flask) -> None:
    calls: list[str] = []
    with signals.events_committed.connected_to(lambda s, **kw: calls.append("x"), sender=toy_app):
        dispatch(toy_app, AddBook(title="Dune", copies=1))
        with pytest.raises(Exception, match="a book with this title exists"):
            dispatch(toy_app, AddBook(title="Dune", copies=1))
    assert calls == ["x"]


def test_a_failing_committed_receiver_does_not_undo_the_write(
    toy_app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    later: list[str] = []

    def failing(sender: Flask, **extra: Any) -> None:
        raise RuntimeError("mailer down")

    def healthy(sender: Flask, events: list[Any], **extra: Any) -> None:
        later.append(events[0].event_type)

    with (
        caplog.at_level(logging.ERROR, logger="cqrs.events"),
        signals.events_committed.connected_to(failing, sender=toy_app),
        signals.events_committed.connected_to(healthy, sender=toy_app),
    ):
        assert dispatch(toy_app, AddBook(title="Dune", copies=1))["id"] == 1
    assert later == ["library.BookAdded"]
    assert count_rows(Book.__table__) == 1 and count_rows(outbox) == 1
    assert "events-committed receiver" in caplog.text and "mailer down" in caplog.text


class RenameRacing(Command):
    book_id: int
    title: str


def test_a_lost_optimistic_race_is_409_and_never_overwrites(
    toy_app: Flask, toy_client: FlaskClient
) -> None:
    dispatch(toy_app, AddBook(title="Dune", copies=1))

    their_titles = iter(["Dune (theirs)", "Dune (theirs again)"])

    def other_writer_commits_first() -> None:
        with allow_unguarded_writes(), Session(db.engine) as other:
            other.get_one(Book, 1).title = next(their_titles)
            other.commit()

    def handler(command: RenameRacing, uow: UnitOfWork) -> None:
        book = uow.session.get_one(Book, command.book_id)  # read version 1
        other_writer_commits_first()  # now at version 2
        book.title = command.title
        uow.session.flush()  # UPDATE ... WHERE version = 1 matches nothing

    def legacy_view(book_id: int) -> dict[str, Any]:
        return {"legacy": True}

    toy_app.add_url_rule("/race/<int:book_id>", "race", legacy_view, methods=["PUT"])
    cqrs = CQRS(db=db)
    cqrs.register_command(RenameRacing, handler, app=toy_app)
    cqrs.command_endpoint(
        "race",
        build=lambda request, args: RenameRacing(book_id=args["book_id"], **request.get_json()),
        app=toy_app,
    )
    change(toolkit_of(toy_app), "race", "command")

    response = toy_client.put("/race/1", json={"title": "Dune (ours)"})
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "concurrency_conflict"
    assert committed_rows(Book.__table__) == [
        {"id": 1, "title": "Dune (theirs)", "copies": 1, "version": 2}
    ]
    assert count_rows(outbox) == 1  # BookAdded only
    with pytest.raises(ConcurrencyConflict):  # the same without HTTP
        dispatch(toy_app, RenameRacing(book_id=1, title="again"))
    assert committed_rows(Book.__table__)[0]["title"] == "Dune (theirs again)"


class InsertDuplicate(Command):
    title: str


def test_integrity_error_propagates_after_rollback(toy_app: Flask) -> None:
    dispatch(toy_app, AddBook(title="Dune", copies=1))

    def handler(command: InsertDuplicate, uow: UnitOfWork) -> None:
        uow.session.add(Book(title="Other", copies=1))
        uow.session.flush()
        uow.session.execute(insert(Book).values(title=command.title, copies=1, version=1))

    toolkit_of(toy_app).command_bus.register(InsertDuplicate, handler)
    with pytest.raises(IntegrityError):
        dispatch(toy_app, InsertDuplicate(title="Dune"))
    assert not db.session().in_transaction()
    assert db.session.scalars(select(Book.title)).all() == ["Dune"]  # session still usable
    assert count_rows(outbox) == 1
