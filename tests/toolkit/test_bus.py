"""The command bus pipeline (correlation, timing, validation, transaction) and the query bus."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from prometheus_client import REGISTRY
from pydantic import Field

from cqrs_layer import (
    Command,
    DomainRuleViolated,
    Query,
    UnitOfWork,
    ValidationFailed,
    current_correlation_id,
    signals,
)
from cqrs_layer.core.correlation import correlation_scope
from cqrs_layer.core.tables import outbox
from cqrs_layer.ops.context import toolkit_of
from cqrs_layer.write.bus import CommandBus, NextHandler

from .toyapp import AddBook, Book, GetBook, committed_rows, count_rows


def bus(app: Flask) -> CommandBus:
    return toolkit_of(app).command_bus


def commands_total(command: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "cqrs_commands_total", {"command": command, "outcome": outcome}
    )
    return value or 0.0


def test_command_handled_signal_and_metrics(toy_app: Flask) -> None:
    handled: list[dict[str, Any]] = []
    ok_before = commands_total("AddBook", "ok")
    rejected_before = commands_total("AddBook", "rejected")
    with signals.command_handled.connected_to(
        lambda sender, **kw: handled.append(kw), sender=toy_app
    ):
        bus(toy_app).dispatch(AddBook(title="Dune", copies=1))
        with pytest.raises(DomainRuleViolated):
            bus(toy_app).dispatch(AddBook(title="Dune", copies=1))
    assert [(h["command"].title, h["result"], type(h["error"])) for h in handled] == [
        ("Dune", {"id": 1, "title": "Dune", "copies": 1}, type(None)),
        ("Dune", None, DomainRuleViolated),
    ]
    assert all(h["duration_s"] > 0 for h in handled)
    assert commands_total("AddBook", "ok") == ok_before + 1
    assert commands_total("AddBook", "rejected") == rejected_before + 1
    events = REGISTRY.get_sample_value(
        "cqrs_command_duration_seconds_count", {"command": "AddBook"}
    )
    assert events is not None and events >= 2


def test_an_explicit_correlation_id_is_used_and_stored(toy_app: Flask) -> None:
    with correlation_scope("batch-7"):
        bus(toy_app).dispatch(AddBook(title="Dune", copies=1))
        assert current_correlation_id() == "batch-7"
    assert current_correlation_id() is None
    assert committed_rows(outbox)[0]["correlation_id"] == "batch-7"


class AddBookFromParts(Command):
    parts: dict[str, Any]


def test_validation_errors_inside_the_pipeline_become_422(toy_app: Flask) -> None:
    def handler(command: AddBookFromParts, uow: UnitOfWork) -> Any:
        return bus(toy_app).dispatch(AddBook.model_validate(command.parts))

    bus(toy_app).register(AddBookFromParts, handler)
    with pytest.raises(ValidationFailed) as raised:
        bus(toy_app).dispatch(AddBookFromParts(parts={"title": "Dune", "copies": -1}))
    assert raised.value.status == 422
    assert raised.value.fields == [
        {"field": "copies", "reason": "Input should be greater than or equal to 0"}
    ]


class AddTwo(Command):
    first: str
    second: str


def test_a_nested_command_joins_the_outer_transaction(toy_app: Flask) -> None:
    def handler(command: AddTwo, uow: UnitOfWork) -> None:
        bus(toy_app).dispatch(AddBook(title=command.first, copies=1))
        bus(toy_app).dispatch(AddBook(title=command.second, copies=1))

    bus(toy_app).register(AddTwo, handler)
    with pytest.raises(DomainRuleViolated):
        bus(toy_app).dispatch(AddTwo(first="Dune", second="Dune"))
    assert count_rows(Book.__table__) == 0 and count_rows(outbox) == 0
    bus(toy_app).dispatch(AddTwo(first="Dune", second="Emma"))
    assert [r["event_type"] for r in committed_rows(outbox)] == ["library.BookAdded"] * 2


def test_custom_middleware_runs_inside_the_pipeline(toy_app: Flask) -> None:
    seen: list[str] = []

    def audit(command: Command, next_handler: NextHandler) -> Any:
        seen.append(f"before {type(command).__name__} {current_correlation_id() is not None}")
        result = next_handler(command)
        seen.append(f"after {result['id']}")
        return result

    bus(toy_app).middleware.insert(1, audit)
    bus(toy_app).dispatch(AddBook(title="Dune", copies=1))
    assert seen == ["before AddBook True", "after 1"]


class Unhandled(Command):
    n: int = Field(ge=0)


def test_registration_errors(toy_app: Flask) -> None:
    with pytest.raises(LookupError, match="no handler registered for Unhandled"):
        bus(toy_app).dispatch(Unhandled(n=1))
    with pytest.raises(ValueError, match="AddBook already has a handler"):
        bus(toy_app).register(AddBook, lambda c, u: None)
    with pytest.raises(LookupError, match="no handler registered for Nope"):
        toolkit_of(toy_app).query_bus.ask(type("Nope", (Query,), {})())


def test_query_bus_returns_plain_data(toy_app: Flask) -> None:
    bus(toy_app).dispatch(AddBook(title="Dune", copies=3))
    query_bus = toolkit_of(toy_app).query_bus
    assert query_bus.ask(GetBook(book_id=1)) == {
        "id": 1,
        "title": "Dune",
        "available": 3,
        "on_loan": 0,
    }
    assert query_bus.ask(GetBook(book_id=2)) is None
