"""The Flask extension: init_app, settings defaults, per-app toolkit, CLI, public surface."""

from __future__ import annotations

import importlib

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from flask_sqlalchemy import SQLAlchemy

import cqrs_layer
from cqrs_layer import CQRS
from cqrs_layer.core.correlation import correlation_scope
from cqrs_layer.core.registry import Endpoint
from cqrs_layer.core.settings import SettingsError
from cqrs_layer.ops.context import Toolkit, toolkit_of
from cqrs_layer.read.projections import ProjectionDispatcher
from cqrs_layer.read.queries import QueryBus
from cqrs_layer.rollout.changes import StageChanges
from cqrs_layer.rollout.comparisons import Comparisons
from cqrs_layer.rollout.flags import FlagStore
from cqrs_layer.rollout.gate import Gate
from cqrs_layer.rollout.history import ComparisonHistory
from cqrs_layer.rollout.routing import Router
from cqrs_layer.write.bus import CommandBus
from cqrs_layer.write.guard import WriteGuard

from .helpers import MakeToyApp, change
from .toyapp import AddBook, LendBook, ToyBase, create_toy_app, db, shelf_model

READ = "library.get_book"
#: Names the old surface exported that are now imported from the private layers.
INTERNAL = (
    "CommandBus",
    "QueryBus",
    "WriteGuard",
    "ProjectionDispatcher",
    "FlagStore",
    "UnguardedWriteError",
    "errors",
    "correlation_scope",
)


def test_the_toolkit_lives_in_app_extensions(toy_app: Flask) -> None:
    toolkit = toy_app.extensions["cqrs"]
    assert isinstance(toolkit, Toolkit)
    assert toolkit_of(toy_app) is toolkit
    assert toolkit_of() is toolkit  # the current app's
    assert toolkit.engine is db.engine
    assert toolkit.registry.read_models == {"book_shelf": shelf_model}
    assert toolkit.registry.endpoints == {
        "library.add_book": Endpoint("library.add_book", "write", writes=frozenset({"books"})),
        READ: Endpoint(READ, "read", read_models=("book_shelf",)),
        "library.lend_book": Endpoint(
            "library.lend_book", "write", writes=frozenset({"books", "loans"})
        ),
        "library.rename_book": Endpoint(
            "library.rename_book", "write", writes=frozenset({"books"})
        ),
    }
    assert sorted(toolkit.router.wrapped) == sorted(toolkit.registry.endpoints)
    wrapped = toolkit.router.wrapped[READ]
    assert wrapped.endpoint is toolkit.registry.endpoints[READ]
    assert wrapped.legacy_view.__name__ == "get_book"
    assert toy_app.view_functions[READ] is not wrapped.legacy_view
    assert isinstance(toolkit.projections, ProjectionDispatcher)
    assert toolkit.projections.handled_event_types() == {
        "library.BookAdded",
        "library.BookLent",
        "library.BookRenamed",
    }
    for name, kind in [
        ("command_bus", CommandBus),
        ("query_bus", QueryBus),
        ("guard", WriteGuard),
        ("flags", FlagStore),
        ("history", ComparisonHistory),
        ("gate", Gate),
        ("changes", StageChanges),
        ("comparisons", Comparisons),
        ("router", Router),
    ]:
        assert isinstance(getattr(toolkit, name), kind), name


def test_settings_defaults_never_override_the_app(database_url: str) -> None:
    app = create_toy_app(
        {"SQLALCHEMY_DATABASE_URI": database_url, "CQRS_WRITE_GUARD": "strict"}, wired=True
    )
    assert app.config["CQRS_WRITE_GUARD"] == "strict"
    assert toolkit_of(app).settings.write_guard == "strict"
    assert app.config["CQRS_DEFAULT_READ_STAGE"] == "legacy"
    assert app.config["CQRS_DEFAULT_WRITE_STAGE"] == "legacy"
    assert app.config["CQRS_ENDPOINT_STAGES"] == {}
    assert app.config["CQRS_ERROR_RENDERER"] is None
    assert app.config["CQRS_COMPARISON_WINDOW"] == 50


def test_one_extension_object_serves_several_apps(database_url: str) -> None:
    cqrs = CQRS(db=db)
    first = create_toy_app({"SQLALCHEMY_DATABASE_URI": database_url}, wired=False)
    second = create_toy_app({"SQLALCHEMY_DATABASE_URI": database_url}, wired=False)
    for app in (first, second):
        cqrs.init_app(app)
    cqrs.register_command(AddBook, lambda c, u: None, app=first)
    assert AddBook in toolkit_of(first).command_bus.handlers
    assert AddBook not in toolkit_of(second).command_bus.handlers
    with second.app_context():  # no app given, none bound: the current one
        cqrs.register_command(LendBook, lambda c, u: None)
    assert LendBook in toolkit_of(second).command_bus.handlers
    assert LendBook not in toolkit_of(first).command_bus.handlers


def test_misconfiguration_is_refused_early(database_url: str) -> None:
    app = create_toy_app({"SQLALCHEMY_DATABASE_URI": database_url}, wired=False)
    with pytest.raises(ValueError, match="Flask-SQLAlchemy instance"):
        CQRS().init_app(app)
    app.config["CQRS_WRITE_GUARD"] = "loud"
    with pytest.raises(
        SettingsError, match=r"^CQRS_WRITE_GUARD: Input should be 'off', 'warn' or 'strict'"
    ):
        CQRS(app, db)
    with pytest.raises(RuntimeError, match="before CQRS"):
        CQRS(Flask("bare"), SQLAlchemy(model_class=ToyBase))
    with pytest.raises(RuntimeError, match=r"CQRS\.init_app was not called"):
        CQRS(db=db).register_command(AddBook, lambda c, u: None, app=app)
    with pytest.raises(RuntimeError, match=r"CQRS\.init_app was not called"):
        toolkit_of(app)


def test_cli_routes_shows_what_a_request_gets(make_toy_app: MakeToyApp) -> None:
    app = make_toy_app(
        CQRS_ENDPOINT_STAGES={READ: "complete", "library.lend_book": "command"},
        CQRS_DEFAULT_SAMPLE_RATE=0.5,
    )
    runner = app.test_cli_runner()
    result = runner.invoke(args=["cqrs", "routes"])
    assert (result.exit_code, result.stdout) == (
        0,
        "ENDPOINT             KIND   STAGE     A REQUEST IS SERVED BY\n"
        "library.add_book     write  legacy    legacy\n"
        "library.get_book     read   complete  the read model (legacy if it fails)\n"
        "library.lend_book    write  command   its command\n"
        "library.rename_book  write  legacy    legacy\n",
    )
    # It reads the flag store, so a recorded change shows at once.
    toolkit = toolkit_of(app)
    change(toolkit, READ, "live", percent=25, force=True)
    change(toolkit, "library.add_book", "command", percent=0)
    change(toolkit, "library.rename_book", "command", percent=10)
    assert runner.invoke(args=["cqrs", "routes"]).stdout.splitlines()[1:] == [
        "library.add_book     write  command  legacy (0% of subjects on its command)",
        "library.get_book     read   live     the read model for 25% of subjects, legacy for "
        "the rest; 50% of requests compared",
        "library.lend_book    write  command  its command",
        "library.rename_book  write  command  its command for 10% of subjects, legacy for the rest",
    ]
    change(toolkit, READ, "shadow")
    assert runner.invoke(args=["cqrs", "routes"]).stdout.splitlines()[2] == (
        "library.get_book     read   shadow   legacy; 50% of requests compared"
    )


def test_cli_outbox_shows_the_newest_events(toy_app: Flask, toy_runner: FlaskCliRunner) -> None:
    assert toy_runner.invoke(args=["cqrs", "outbox"]).stdout == "outbox is empty\n"
    bus = toolkit_of(toy_app).command_bus
    with correlation_scope("cli-test"):
        for title in ("Dune", "Emma", "Ulysses"):
            bus.dispatch(AddBook(title=title, copies=1))
    result = toy_runner.invoke(args=["cqrs", "outbox", "--last", "2", "--payload"])
    assert result.exit_code == 0, result.output
    lines = [line.strip().split("  ") for line in result.stdout.splitlines()]
    assert [(cols[0], cols[2], cols[3], cols[4]) for cols in lines] == [
        ("2", "library.BookAdded", "book:2", "correlation=cli-test"),
        ("3", "library.BookAdded", "book:3", "correlation=cli-test"),
    ]
    assert lines[1][5] == '{"copies": 1, "id": 3, "title": "Ulysses"}'


def test_cli_group_carries_every_command(toy_runner: FlaskCliRunner) -> None:
    output = toy_runner.invoke(args=["cqrs", "--help"]).stdout
    for command in (
        "backfill",
        "flags",
        "outbox",
        "refresh",
        "report",
        "routes",
        "status",
        "verify",
    ):
        assert f"  {command}" in output


def test_the_public_surface_is_exactly_this() -> None:
    assert cqrs_layer.__all__ == [
        "CQRS",
        "Command",
        "Event",
        "Query",
        "UnitOfWork",
        "allow_unguarded_writes",
        "Projection",
        "ProjectionContext",
        "ReadModel",
        "ComparisonOptions",
        "Decline",
        "CommandRejected",
        "ConcurrencyConflict",
        "DomainRuleViolated",
        "NotFound",
        "ValidationFailed",
        "current_correlation_id",
        "signals",
    ]
    for name in cqrs_layer.__all__:
        assert getattr(cqrs_layer, name) is not None, name
    assert cqrs_layer.ConcurrencyConflict.status == 409
    assert cqrs_layer.ValidationFailed.status == 422
    assert not set(INTERNAL) & set(cqrs_layer.__all__)


@pytest.mark.parametrize(
    ("module", "names"),
    [
        ("cqrs_layer.sql", None),
        (
            "cqrs_layer.schema",
            [
                "create_read_models",
                "create_toolkit_tables",
                "database_problem",
                "drop_read_models",
                "drop_toolkit_tables",
                "install_capture",
                "metadata",
                "migration_metadata",
                "missing_tables",
                "remove_capture",
                "unreachable",
            ],
        ),
        ("cqrs_layer.testing", None),
    ],
)
def test_each_public_submodule_lists_names_that_resolve(
    module: str, names: list[str] | None
) -> None:
    public = importlib.import_module(module)
    exported = public.__all__
    assert exported, module
    assert len(set(exported)) == len(exported)
    for name in exported:
        assert getattr(public, name) is not None, f"{module}.{name}"
    if names is not None:
        assert exported == names
