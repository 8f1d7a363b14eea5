"""The Flask extension, ``CQRS(app=None, db=None)`` + ``init_app``: the one place where the
toolkit's parts are built and wired together for an app.

Each part gets what it uses (the registry, the engine, the settings, the parts it calls);
the assembled :class:`~cqrs_layer.ops.context.Toolkit` is kept in ``app.extensions["cqrs"]``
for the operator's commands and the admin API. One ``CQRS`` object can serve every app a
factory builds: registration methods act on the app given, else the app bound at
construction, else ``current_app``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from flask import Flask
from flask.typing import ResponseReturnValue
from flask_sqlalchemy import SQLAlchemy

from .core import correlation, own_changes
from .core.errors import (
    CommandRejected,
    UnguardedWriteError,
    render_json_error,
    rendered,
    unguarded_write_refusal,
)
from .core.messages import Command, Query
from .core.read_model import ReadModel
from .core.registry import Endpoint, Registry
from .core.settings import Settings
from .ops.admin_api import blueprint as admin_blueprint
from .ops.cli import cqrs_cli
from .ops.context import EXTENSION_KEY, Toolkit, toolkit_of
from .read import keeping
from .read.capture import CaptureStatus
from .read.projections import NO_PROJECTIONS, Projection, ProjectionDispatcher
from .read.queries import QueryBus, QueryHandler
from .read.refresh import Refresher
from .rollout.catch_up import CatchUp
from .rollout.changes import StageChanges
from .rollout.comparisons import Comparisons
from .rollout.demotion import Demotion
from .rollout.diff import ComparisonOptions
from .rollout.flags import FlagStore
from .rollout.gate import Gate
from .rollout.history import ComparisonHistory
from .rollout.routing import Build, Respond, Router, ViewDecorator, mark_served_by
from .write import bounded, claims, guard
from .write.bus import CommandBus, CommandHandler
from .write.middleware import standard_pipeline
from .write.writers import WriterLog

H = TypeVar("H", bound=Callable[..., Any])


class CQRS:
    def __init__(self, app: Flask | None = None, db: SQLAlchemy | None = None) -> None:
        self.app = app
        self.db = db
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask, db: SQLAlchemy | None = None) -> None:
        """Wire the toolkit into ``app``; call it after the app's blueprints are registered
        (endpoints are wrapped by name) and after ``db.init_app(app)``.

        Reads the ``CQRS_*`` settings from ``app.config`` once; a malformed or unknown one
        stops here (:class:`~cqrs_layer.core.settings.SettingsError`, naming the key).
        """
        db = db or self.db
        if db is None:
            raise ValueError("CQRS needs the app's Flask-SQLAlchemy instance: CQRS(app, db)")
        if "sqlalchemy" not in app.extensions:
            raise RuntimeError("initialise Flask-SQLAlchemy (db.init_app) before CQRS")
        settings = Settings.from_config(app.config)
        for key, value in settings.to_config().items():
            app.config.setdefault(key, value)
        with app.app_context():
            engine = db.engine
            engines = list(db.engines.values())

        for each in engines:
            own_changes.install(each)
        registry = Registry()
        captured = CaptureStatus(engine, lambda: registry.read_models)
        projections = ProjectionDispatcher(
            kept_by_capture=captured.kept, timeout_ms=settings.refresh_timeout_ms
        )
        writer_log = WriterLog(engine)
        background: list[Comparisons] = []  # filled below: the guard records through it
        write_guard = guard.WriteGuard(
            app,
            settings.write_guard,
            lambda: _columns_read(registry, captured),
            lambda: _columns_read(registry, None),
            lambda *writer: background[0].pool().submit(lambda: writer_log.record(*writer)),
        )
        guard.install(write_guard, db.session.session_factory.class_, engines)
        flags = FlagStore(engine, registry, settings)
        history = ComparisonHistory(engine, settings.comparison_history)
        gate = Gate(
            registry,
            engine,
            flags,
            history,
            lambda: _merged(writer_log.learned(), write_guard.learned()),
            lambda name: captured.kept(name, fresh=True),
            settings,
        )
        changes = StageChanges(registry, flags, gate)
        demotion = Demotion(flags, changes, history, settings)
        render_error = _error_renderer(settings)
        applied = projections if settings.inline_projections else NO_PROJECTIONS
        command_bus = CommandBus(standard_pipeline(db.session, applied))
        query_bus = QueryBus(lambda: db.session.connection())
        comparisons = Comparisons(app, db.session, engine, history, settings, demotion.check)
        background.append(comparisons)
        refresher = Refresher(lambda: registry.read_models)
        catch_up = CatchUp(refresher, engine, comparisons.pool)
        if settings.refresh_in_writes:
            keeping.install(
                app,
                db.session.session_factory.class_,
                keeping.Keeper(refresher, settings.refresh_timeout_ms, catch_up.ask),
            )
        bounded.install(db.session.session_factory.class_)
        claims.install(db.session.session_factory.class_)
        router = Router(
            app,
            registry,
            flags,
            settings,
            db.session,
            engine,
            command_bus,
            query_bus,
            comparisons,
            render_error,
            catch_up.ask,
        )
        app.extensions[EXTENSION_KEY] = Toolkit(
            settings=settings,
            registry=registry,
            engine=engine,
            command_bus=command_bus,
            query_bus=query_bus,
            projections=projections,
            guard=write_guard,
            flags=flags,
            history=history,
            gate=gate,
            changes=changes,
            comparisons=comparisons,
            router=router,
            captures=captured,
        )

        correlation.install(app)
        app.register_error_handler(CommandRejected, lambda error: rendered(error, render_error))
        app.register_error_handler(
            UnguardedWriteError, lambda error: render_error(unguarded_write_refusal(error))
        )
        app.after_request(mark_served_by)
        app.cli.add_command(cqrs_cli)
        app.register_blueprint(admin_blueprint)

    def _toolkit(self, app: Flask | None) -> Toolkit:
        return toolkit_of(app or self.app)

    # ------------------------------------------------------------ declarations

    def register_read_model(self, read_model: ReadModel, *, app: Flask | None = None) -> None:
        self._toolkit(app).registry.add_read_model(read_model)

    def register_projection(self, projection: Projection, *, app: Flask | None = None) -> None:
        """Apply ``projection`` inline in every command's transaction; its read models
        are registered too."""
        self._toolkit(app).projections.add(projection)
        for read_model in projection.read_models:
            self.register_read_model(read_model, app=app)

    def register_command(
        self, command_type: type[Command], handler: CommandHandler, *, app: Flask | None = None
    ) -> None:
        self._toolkit(app).command_bus.register(command_type, handler)

    def register_query(
        self, query_type: type[Query], handler: QueryHandler, *, app: Flask | None = None
    ) -> None:
        self._toolkit(app).query_bus.register(query_type, handler)

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

    # ------------------------------------------------------------ endpoints

    def command_endpoint(
        self,
        endpoint: str,
        *,
        build: Build,
        respond: Respond | None = None,
        decorators: Sequence[ViewDecorator] = (),
        writes: Sequence[str] = (),
        app: Flask | None = None,
    ) -> None:
        """Give the write endpoint ``endpoint`` a command path (stage ``command``).

        ``build(request, view_args)`` returns the command; ``respond(result, view_args)``
        the response (default: the result, or 204). ``decorators``: the legacy view's auth
        decorators, outermost first. ``writes``: the tables it writes, so the promotion
        gate knows which read endpoints it blocks while on ``legacy``."""
        self._toolkit(app).router.wrap(
            Endpoint(endpoint, "write", writes=frozenset(writes)), build, respond, decorators
        )

    def query_endpoint(
        self,
        endpoint: str,
        *,
        build: Build,
        respond: Respond | None = None,
        decorators: Sequence[ViewDecorator] = (),
        read_models: Sequence[str] = (),
        comparison: ComparisonOptions | None = None,
        app: Flask | None = None,
    ) -> None:
        """Give the read endpoint ``endpoint`` a query path (stages shadow, live, complete).

        ``build(request, view_args)`` returns the query; ``respond(result, view_args)`` the
        response (default: the result). ``read_models``: the names of the read models the
        query reads (the promotion gate verifies them; none declared means all).
        ``comparison``: what may differ between the two answers."""
        self._toolkit(app).router.wrap(
            Endpoint(endpoint, "read", read_models=tuple(read_models)),
            build,
            respond,
            decorators,
            comparison,
        )

    # ------------------------------------------------------------ sending messages

    def dispatch(self, command: Command, *, app: Flask | None = None) -> Any:
        """Run ``command`` through the bus, in its own transaction; returns its result."""
        return self._toolkit(app).command_bus.dispatch(command)

    def ask(self, query: Query, *, app: Flask | None = None) -> Any:
        return self._toolkit(app).query_bus.ask(query)


def _columns_read(registry: Registry, captured: CaptureStatus | None) -> dict[str, frozenset[str]]:
    """The columns the read models read (with ``captured``: only those without change
    capture, whose writers outside a command no event tells them about)."""
    watched: dict[str, set[str]] = {}
    for name, model in registry.read_models.items():
        if captured is not None and captured.kept(name):
            continue
        for table, columns in model.lineage.columns.items():
            watched.setdefault(table, set()).update(columns)
    return {table: frozenset(columns) for table, columns in watched.items()}


def _merged(*learned: Mapping[str, frozenset[str]]) -> dict[str, frozenset[str]]:
    merged: dict[str, frozenset[str]] = {}
    for each in learned:
        for endpoint, tables in each.items():
            merged[endpoint] = merged.get(endpoint, frozenset()) | tables
    return merged


def _error_renderer(settings: Settings) -> Callable[[CommandRejected], ResponseReturnValue]:
    renderer: Callable[[CommandRejected], ResponseReturnValue] | None = settings.error_renderer
    return renderer or render_json_error
