"""The Flask extension: ``CQRS(app=None, db=None)`` + ``init_app``, state per app.

Everything an app needs lives in ``app.extensions["cqrs"]`` (a :class:`CQRSState`), so one
``CQRS`` object can serve every app a factory builds. Registration methods act on the app
given, else the app bound at construction, else ``current_app``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from flask import Flask, current_app
from flask.typing import ResponseReturnValue
from flask_sqlalchemy import SQLAlchemy

from . import admin_api, correlation, guard, rollout
from .bus import CommandBus, CommandHandler, QueryBus, QueryHandler
from .cli import cqrs_cli
from .errors import (
    CommandRejected,
    ErrorRenderer,
    UnguardedWriteError,
    render_json_error,
    unguarded_write_refusal,
)
from .flags import FlagStore
from .messages import Command, Query
from .middleware import DEFAULT_PIPELINE
from .projections import Projection, ProjectionDispatcher
from .readmodel import ReadModel
from .routing import (
    Build,
    ModeSource,
    Respond,
    ViewDecorator,
    WrappedEndpoint,
    mark_served_by,
    wrap_endpoint,
)

H = TypeVar("H", bound=Callable[..., Any])

DEFAULT_CONFIG: dict[str, Any] = {
    "CQRS_ENDPOINT_MODES": {},
    "CQRS_DEFAULT_WRITE_MODE": "legacy",
    "CQRS_DEFAULT_READ_MODE": "legacy",
    "CQRS_WRITE_GUARD": "warn",
    "CQRS_ERROR_RENDERER": None,
    "CQRS_OUTBOX_SHOW": 20,
    # Flags (cqrs_layer.flags): how stale a process's flag cache may get, the default
    # comparison sampling, whose subject a percentage rollout counts, the admin API token.
    "CQRS_FLAG_REFRESH_SECONDS": 0.5,
    "CQRS_DEFAULT_SAMPLE_RATE": 1.0,
    "CQRS_SUBJECT_HEADER": rollout.DEFAULT_SUBJECT_HEADER,
    "CQRS_SUBJECT_KEY": None,
    "CQRS_ADMIN_TOKEN": None,
}


class CQRSState:
    """One app's toolkit state: buses, read models, projections, guard, wrapped endpoints."""

    def __init__(self, app: Flask, db: SQLAlchemy, modes: ModeSource | None = None) -> None:
        self.app = app
        self.db = db
        self.flags = FlagStore(app, self)
        self.modes: ModeSource = modes or self.flags
        self.read_models: dict[str, ReadModel] = {}
        self.projections = ProjectionDispatcher()
        self.command_bus = CommandBus(DEFAULT_PIPELINE)
        self.query_bus = QueryBus(lambda: db.session.connection())
        self.guard = guard.WriteGuard(app)
        self.endpoints: dict[str, WrappedEndpoint] = {}

    def register_read_model(self, read_model: ReadModel) -> None:
        existing = self.read_models.get(read_model.name)
        if existing is not None and existing is not read_model:
            raise ValueError(f"a read model named {read_model.name!r} is already registered")
        self.read_models[read_model.name] = read_model
        self.guard.guard_tables(read_model.depends_on)

    def register_projection(self, projection: Projection) -> None:
        self.projections.add(projection)
        for read_model in projection.read_models:
            self.register_read_model(read_model)

    def render_error(self, error: CommandRejected) -> ResponseReturnValue:
        return self.error_renderer()(error)

    def error_renderer(self) -> ErrorRenderer:
        configured = self.app.config["CQRS_ERROR_RENDERER"]
        if configured is None:
            return render_json_error
        if isinstance(configured, str):  # "package.module:function"
            module_name, _, attribute = configured.partition(":")
            renderer: ErrorRenderer = getattr(importlib.import_module(module_name), attribute)
            return renderer
        return configured


class CQRS:
    def __init__(
        self,
        app: Flask | None = None,
        db: SQLAlchemy | None = None,
        *,
        mode_source: ModeSource | None = None,
    ) -> None:
        self.app = app
        self.db = db
        self.mode_source = mode_source
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask, db: SQLAlchemy | None = None) -> CQRSState:
        db = db or self.db
        if db is None:
            raise ValueError("CQRS needs the app's Flask-SQLAlchemy instance: CQRS(app, db)")
        if "sqlalchemy" not in app.extensions:
            raise RuntimeError("initialise Flask-SQLAlchemy (db.init_app) before CQRS")
        for key, value in DEFAULT_CONFIG.items():
            app.config.setdefault(key, value)
        if app.config["CQRS_WRITE_GUARD"] not in guard.MODES:
            raise ValueError(f"CQRS_WRITE_GUARD must be one of {', '.join(guard.MODES)}")
        _check_default_stages(app)
        state = CQRSState(app, db, self.mode_source)
        app.extensions["cqrs"] = state
        correlation.install(app)
        guard.install(app, db, state.guard)
        app.register_error_handler(CommandRejected, state.render_error)
        app.register_error_handler(
            UnguardedWriteError, lambda error: state.render_error(unguarded_write_refusal(error))
        )
        app.after_request(mark_served_by)
        app.cli.add_command(cqrs_cli)
        app.register_blueprint(admin_api.blueprint)
        return state

    def state(self, app: Flask | None = None) -> CQRSState:
        target = app or self.app or current_app._get_current_object()  # type: ignore[attr-defined]
        try:
            return target.extensions["cqrs"]
        except KeyError:
            raise RuntimeError(f"CQRS.init_app was not called for app {target.name!r}") from None

    def register_read_model(self, read_model: ReadModel, *, app: Flask | None = None) -> None:
        self.state(app).register_read_model(read_model)

    def register_projection(self, projection: Projection, *, app: Flask | None = None) -> None:
        self.state(app).register_projection(projection)

    def register_command(
        self, command_type: type[Command], handler: CommandHandler, *, app: Flask | None = None
    ) -> None:
        self.state(app).command_bus.register(command_type, handler)

    def register_query(
        self, query_type: type[Query], handler: QueryHandler, *, app: Flask | None = None
    ) -> None:
        self.state(app).query_bus.register(query_type, handler)

    def command_handler(
        self, command_type: type[Command], *, app: Flask | None = None
    ) -> Callable[[H], H]:
        def register(handler: H) -> H:
            self.register_command(command_type, handler, app=app)
            return handler

        return register

    def query_handler(
        self, query_type: type[Query], *, app: Flask | None = None
    ) -> Callable[[H], H]:
        def register(handler: H) -> H:
            self.register_query(query_type, handler, app=app)
            return handler

        return register

    def dispatch(self, command: Command, *, app: Flask | None = None) -> Any:
        return self.state(app).command_bus.dispatch(command)

    def ask(self, query: Query, *, app: Flask | None = None) -> Any:
        return self.state(app).query_bus.ask(query)

    def command_endpoint(
        self,
        endpoint: str,
        *,
        build: Build,
        respond: Respond | None = None,
        decorators: Sequence[ViewDecorator] = (),
        writes: Sequence[str] = (),
        app: Flask | None = None,
    ) -> WrappedEndpoint:
        """Give the write endpoint ``endpoint`` a command path (stage ``command``).

        ``writes``: the tables it writes, so the promotion gate knows which read
        endpoints it blocks while on ``legacy`` (else learned by the write guard)."""
        state = self.state(app)
        return wrap_endpoint(
            state.app, state, endpoint, "write", build, respond, decorators, writes=writes
        )

    def query_endpoint(
        self,
        endpoint: str,
        *,
        build: Build,
        respond: Respond | None = None,
        decorators: Sequence[ViewDecorator] = (),
        read_models: Sequence[str] = (),
        compare: Any = None,
        app: Flask | None = None,
    ) -> WrappedEndpoint:
        """Give the read endpoint ``endpoint`` a query path (stages shadow/live/complete).

        ``read_models``: names of the read models the query reads (the promotion gate
        verifies them; none declared means all). ``compare``: a ``CompareOptions``."""
        state = self.state(app)
        return wrap_endpoint(
            state.app,
            state,
            endpoint,
            "read",
            build,
            respond,
            decorators,
            read_models=read_models,
            compare=compare,
        )


def _check_default_stages(app: Flask) -> None:
    for kind, key in (("read", "CQRS_DEFAULT_READ_MODE"), ("write", "CQRS_DEFAULT_WRITE_MODE")):
        try:
            rollout.normalize_stage(kind, app.config[key])
        except CommandRejected:
            raise ValueError(
                f"{key} is {app.config[key]!r}; use one of {', '.join(rollout.STAGES[kind])}"
            ) from None
