"""The Flask extension: init_app, config defaults, per-app state, CLI, public surface."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from flask_sqlalchemy import SQLAlchemy

import cqrs_layer
from cqrs_layer import CQRS, CommandBus, ProjectionDispatcher, QueryBus, WriteGuard

from .toyapp import AddBook, ToyBase, create_toy_app, db, shelf_model


def test_state_lives_in_app_extensions(toy_app: Flask) -> None:
    state = toy_app.extensions["cqrs"]
    assert state.db is db
    assert state.read_models == {"book_shelf": shelf_model}
    assert isinstance(state.projections, ProjectionDispatcher)
    assert state.projections.handled_event_types() == {
        "library.BookAdded",
        "library.BookLent",
        "library.BookRenamed",
    }
    assert isinstance(state.command_bus, CommandBus)
    assert isinstance(state.query_bus, QueryBus)
    assert isinstance(state.guard, WriteGuard)


def test_config_defaults_never_override_the_app(database_url: str) -> None:
    app = create_toy_app(
        {"SQLALCHEMY_DATABASE_URI": database_url, "CQRS_WRITE_GUARD": "strict"}, wired=True
    )
    assert app.config["CQRS_WRITE_GUARD"] == "strict"
    assert app.config["CQRS_DEFAULT_READ_MODE"] == "legacy"
    assert app.config["CQRS_DEFAULT_WRITE_MODE"] == "legacy"
    assert app.config["CQRS_ENDPOINT_MODES"] == {}
    assert app.config["CQRS_ERROR_RENDERER"] is None


def test_one_extension_object_serves_several_apps(database_url: str) -> None:
    cqrs = CQRS(db=db)
    first = create_toy_app({"SQLALCHEMY_DATABASE_URI": database_url}, wired=False)
    second = create_toy_app({"SQLALCHEMY_DATABASE_URI": database_url}, wired=False)
    for app in (first, second):
        cqrs.init_app(app)
    cqrs.register_command(AddBook, lambda c, u: None, app=first)
    assert AddBook in first.extensions["cqrs"].command_bus.handlers
    assert AddBook not in second.extensions["cqrs"].command_bus.handlers
    with second.app_context():
        assert cqrs.state() is second.extensions["cqrs"]


def test_misconfiguration_is_refused_early(database_url: str) -> None:
    app = create_toy_app({"SQLALCHEMY_DATABASE_URI": database_url}, wired=False)
    with pytest.raises(ValueError, match="Flask-SQLAlchemy instance"):
        CQRS().init_app(app)
    app.config["CQRS_WRITE_GUARD"] = "loud"
    with pytest.raises(ValueError, match="CQRS_WRITE_GUARD must be one of off, warn, strict"):
        CQRS(app, db)
    with pytest.raises(RuntimeError, match="before CQRS"):
        CQRS(Flask("bare"), SQLAlchemy(model_class=ToyBase))
    with pytest.raises(RuntimeError, match=r"CQRS\.init_app was not called"):
        CQRS(db=db).state(app)


def test_cli_routes_lists_wrapped_endpoints_and_their_mode(
    toy_app: Flask, toy_runner: FlaskCliRunner
) -> None:
    toy_app.config["CQRS_ENDPOINT_MODES"] = {"library.get_book": "read-model"}
    result = toy_runner.invoke(args=["cqrs", "routes"])
    assert result.exit_code == 0, result.output
    assert [line.split() for line in result.output.splitlines()] == [
        ["library.add_book", "write", "legacy"],
        ["library.get_book", "read", "complete"],
        ["library.lend_book", "write", "legacy"],
        ["library.rename_book", "write", "legacy"],
    ]


def test_cli_outbox_shows_the_newest_events(toy_app: Flask, toy_runner: FlaskCliRunner) -> None:
    assert toy_runner.invoke(args=["cqrs", "outbox"]).output == "outbox is empty\n"
    bus = toy_app.extensions["cqrs"].command_bus
    with cqrs_layer.correlation_scope("cli-test"):
        for title in ("Dune", "Emma", "Ulysses"):
            bus.dispatch(AddBook(title=title, copies=1))
    result = toy_runner.invoke(args=["cqrs", "outbox", "--last", "2", "--payload"])
    assert result.exit_code == 0, result.output
    lines = [line.strip().split("  ") for line in result.output.splitlines()]
    assert [(cols[0], cols[2], cols[3], cols[4]) for cols in lines] == [
        ("2", "library.BookAdded", "book:2", "correlation=cli-test"),
        ("3", "library.BookAdded", "book:3", "correlation=cli-test"),
    ]
    assert lines[1][5] == '{"copies": 1, "id": 3, "title": "Ulysses"}'


def test_cli_group_carries_the_read_model_commands(toy_runner: FlaskCliRunner) -> None:
    output = toy_runner.invoke(args=["cqrs", "--help"]).output
    for command in ("backfill", "outbox", "routes", "verify"):
        assert f"  {command}" in output


def test_public_surface_is_explicit() -> None:
    exported: dict[str, Any] = {name: getattr(cqrs_layer, name) for name in cqrs_layer.__all__}
    for name in ("CQRS", "Command", "Query", "Event", "errors", "ReadModel", "Projection"):
        assert name in exported
    assert exported["errors"].ConcurrencyConflict.status == 409
