"""Wrapping existing Flask endpoints, by endpoint name, with a command or query path.

The legacy view function is left untouched: ``app.view_functions[endpoint]`` is replaced by
a wrapper that asks the flag store which path serves this request, runs it, and marks the
response with ``X-CQRS-Served-By``. The new path is wrapped in the same auth decorators
the legacy view has (``decorators=``), since it does not go through them.
"""

from __future__ import annotations

import difflib
import functools
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from flask import Flask, Request, Response, after_this_request, request
from flask.typing import ResponseReturnValue
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import scoped_session

from ..core import logs, metrics
from ..core.errors import CommandRejected, Decline
from ..core.messages import Query
from ..core.registry import Endpoint, EndpointKind, Registry
from ..core.settings import Settings
from ..read.queries import QueryBus
from ..read.refresh import pending_models
from ..write.bus import CommandBus
from ..write.idempotency import HEADER as IDEMPOTENCY_HEADER
from .comparisons import (
    LEGACY,
    READ_MODEL,
    Comparison,
    Comparisons,
    Observation,
    RequestCopy,
    answer_of,
    describe,
    display_path,
    elapsed_ms,
    handled_response,
    snapshot_for,
)
from .deadline import Deadline, DeadlineExceeded, enforced
from .diff import ComparisonOptions
from .flags import FlagStore
from .history import FALLBACK, STALE, ComparisonResult
from .stages import COMMAND, STAGES, Route, check_stage, decide, subject_reader
from .writes import Build, RenderError, Respond, View, Writes, built

SERVED_BY_HEADER = "X-CQRS-Served-By"
_SERVED_BY_KEY = "cqrs.served_by"  # on the request: an app context can outlive it
_LEGACY_ROUTE = Route(LEGACY, False, False, False)

ViewDecorator = Callable[[Callable[..., Any]], Callable[..., Any]]


@dataclass(frozen=True)
class WrappedEndpoint:
    endpoint: Endpoint
    legacy_view: View
    new_view: View
    #: Read endpoint: how its comparisons diff the two answers.
    options: ComparisonOptions
    #: Write endpoint: the legacy view for a request carrying an ``Idempotency-Key``.
    keyed_legacy_view: View | None = None


def default_read_respond(result: Any, _view_args: dict[str, Any]) -> ResponseReturnValue:
    return result


def default_write_respond(result: Any, _view_args: dict[str, Any]) -> ResponseReturnValue:
    return result if result is not None else ("", 204)


def mark_served_by(response: Response) -> Response:
    """after_request: responses rendered by error handlers (aborts in auth decorators,
    host exceptions) still say which path served them."""
    served = request.environ.get(_SERVED_BY_KEY)
    if served is not None and SERVED_BY_HEADER not in response.headers:
        response.headers[SERVED_BY_HEADER] = served
    return response


class Router:
    """Serves one app's wrapped endpoints by their flags."""

    def __init__(
        self,
        app: Flask,
        registry: Registry,
        flags: FlagStore,
        settings: Settings,
        session: scoped_session[Any],
        engine: Engine,
        command_bus: CommandBus,
        query_bus: QueryBus,
        comparisons: Comparisons,
        render_error: RenderError,
        refresh_later: Callable[[Iterable[str]], object],
    ) -> None:
        self._app = app
        self._engine = engine
        self._refresh_later = refresh_later
        self._registry = registry
        self._flags = flags
        self._settings = settings
        self._session = session
        self._command_bus = command_bus
        self._query_bus = query_bus
        self._comparisons = comparisons
        self._render_error = render_error
        self._writes = Writes(session, engine, settings, command_bus, render_error)
        self._read_subject = subject_reader(settings)
        self.wrapped: dict[str, WrappedEndpoint] = {}

    # ------------------------------------------------------------ wrapping

    def wrap(
        self,
        endpoint: Endpoint,
        build: Build,
        respond: Respond | None = None,
        decorators: Sequence[ViewDecorator] = (),
        options: ComparisonOptions | None = None,
    ) -> WrappedEndpoint:
        app = self._app
        legacy_view = _existing_view(app, endpoint.name)
        configured = self._settings.endpoint_stages.get(endpoint.name)
        if configured is not None:
            try:
                check_stage(endpoint.kind, configured)
            except CommandRejected:
                raise ValueError(
                    f"CQRS_ENDPOINT_STAGES[{endpoint.name!r}] is {configured!r}; a "
                    f"{endpoint.kind} endpoint takes one of {', '.join(STAGES[endpoint.kind])}"
                ) from None
        self._registry.add_endpoint(endpoint)
        keyed_legacy_view = None
        if endpoint.kind == "write":
            new_view = self._writes.command_view(
                endpoint.name, build, respond or default_write_respond
            )
            keyed_legacy_view = _decorated(
                self._writes.keyed_legacy_view(endpoint.name, legacy_view), decorators
            )
        else:
            new_view = self._query_view(build, respond or default_read_respond)
        wrapped = WrappedEndpoint(
            endpoint,
            legacy_view,
            _decorated(new_view, decorators),
            options or ComparisonOptions(),
            keyed_legacy_view,
        )
        self.wrapped[endpoint.name] = wrapped

        @functools.wraps(legacy_view)
        def cqrs_endpoint(*args: Any, **view_args: Any) -> Response:
            route = self.route(endpoint.name, endpoint.kind, request)
            if endpoint.kind == "read":
                return self._serve_read(wrapped, route, args, view_args)
            return self._serve_write(wrapped, route, args, view_args)

        app.view_functions[endpoint.name] = cqrs_endpoint
        return wrapped

    def route(self, endpoint: str, kind: EndpointKind, live_request: Request) -> Route:
        """Which path serves this request. Never raises: on any trouble, legacy."""
        try:
            stage, percent, sample_rate = self._flags.effective(endpoint, kind)
            return decide(
                endpoint, kind, stage, percent, sample_rate, lambda: self._subject(live_request)
            )
        except Exception:
            logs.fallback.exception("flag evaluation failed for %s; serving legacy", endpoint)
            return _LEGACY_ROUTE

    def _subject(self, live_request: Request) -> str:
        # Unwrap Flask's ``request`` proxy once instead of paying for it per attribute.
        unwrap = getattr(live_request, "_get_current_object", None)
        return self._read_subject(unwrap() if unwrap is not None else live_request)

    # ------------------------------------------------------------ the new paths

    def _query_view(self, build: Build, respond: Respond) -> Callable[..., Any]:
        def serve_query(**view_args: Any) -> ResponseReturnValue:
            return respond(self._query_bus.ask(built(build, view_args, Query)), view_args)

        return serve_query

    # ------------------------------------------------------------ serving a write

    def _serve_write(
        self,
        wrapped: WrappedEndpoint,
        route: Route,
        args: tuple[Any, ...],
        view_args: dict[str, Any],
    ) -> Response:
        served_by = COMMAND if route.serve_new else LEGACY
        request.environ[_SERVED_BY_KEY] = served_by
        name = wrapped.endpoint.name
        legacy = wrapped.legacy_view
        if wrapped.keyed_legacy_view is not None and IDEMPOTENCY_HEADER in request.headers:
            legacy = wrapped.keyed_legacy_view  # the key holds on the legacy path too
        view = wrapped.new_view if route.serve_new else legacy
        try:
            response = self._writes.serve(name, view, args, view_args)
        except Decline as declined:  # raised by build, before anything was written
            served_by = _declined(name, declined)
            response = self._writes.serve(name, legacy, args, view_args)
        response.headers[SERVED_BY_HEADER] = served_by
        return response

    # ------------------------------------------------------------ serving a read

    def _serve_read(
        self,
        wrapped: WrappedEndpoint,
        route: Route,
        args: tuple[Any, ...],
        view_args: dict[str, Any],
    ) -> Response:
        """Serve a read per ``route``: the new path (falling back to legacy when it fails
        or is late, if the route allows), else legacy; queue a comparison when sampled.
        The header says which path actually served."""
        app = self._app
        started = time.perf_counter()
        if route.serve_new:
            request.environ[_SERVED_BY_KEY] = READ_MODEL
            response, failure = self._try_new_path(wrapped, args, view_args)
            new_ms = elapsed_ms(started)
            if failure is None and response is not None:
                if route.compare:
                    self._compare_after_response(wrapped, route, READ_MODEL, new_ms)
                response.headers[SERVED_BY_HEADER] = READ_MODEL
                return response
            assert failure is not None
            if not route.fallback and not isinstance(failure[1], Decline):
                raise failure[1]
            self._fall_back(wrapped.endpoint.name, route, failure, new_ms)
        elif route.compare:
            self._compare_after_response(wrapped, route, LEGACY, None)
        request.environ[_SERVED_BY_KEY] = LEGACY
        response = app.make_response(wrapped.legacy_view(*args, **view_args))
        response.headers[SERVED_BY_HEADER] = LEGACY
        return response

    def _try_new_path(
        self,
        wrapped: WrappedEndpoint,
        args: tuple[Any, ...],
        view_args: dict[str, Any],
    ) -> tuple[Response | None, Failure | None]:
        """The new path's response, or why it cannot be used. The database stops its
        queries at ``CQRS_READ_TIMEOUT_MS``; Python time past it is measured and the
        answer dropped."""
        deadline = Deadline(self._settings.read_timeout_ms)
        models = self._read_model_names(wrapped.endpoint.name)
        try:
            # One snapshot for "are its read models current?" and the read itself, on a
            # connection of its own that the app's session shares (a query handler may
            # use the app's models and serializers): a change committed in between
            # cannot slip through.
            with snapshot_for(self._engine, self._session) as connection:
                stale = pending_models(connection, models)
                if stale:
                    return None, ("stale", StaleReadModels(stale))
                with enforced(connection, deadline), self._query_bus.using(connection):
                    response = self._answer(wrapped, args, view_args)
        except DeadlineExceeded as exceeded:
            _roll_back(self._session)
            return None, ("timeout", exceeded)
        except Decline as declined:
            return None, ("declined", declined)
        except Exception as error:
            _roll_back(self._session)
            return None, ("error", error)
        if deadline.expired():
            return None, ("timeout", deadline.exceeded())
        if response.status_code >= 500:
            return None, ("error", RuntimeError(f"HTTP {response.status_code}"))
        return response, None

    def _answer(
        self, wrapped: WrappedEndpoint, args: tuple[Any, ...], view_args: dict[str, Any]
    ) -> Response:
        """The new path's response. A refusal (``CommandRejected``), an ``abort(404)`` or
        any error the app's own handlers render is an answer like any other: compared
        with legacy's and counted. Only what no handler takes (or a 5xx) is a failure."""
        try:
            return self._app.make_response(wrapped.new_view(*args, **view_args))
        except CommandRejected as error:
            return self._app.make_response(self._render_error(error))
        except (DeadlineExceeded, Decline):
            raise
        except Exception as error:
            # Re-raises what no handler takes.
            return self._app.make_response(handled_response(self._app, error))

    def _read_model_names(self, endpoint: str) -> list[str]:
        models, _unknown = self._registry.read_models_of(endpoint)
        return [model.name for model in models]

    def _fall_back(self, endpoint: str, route: Route, failure: Failure, new_ms: float) -> None:
        """Count and log the failure; record it (with the legacy answer) once it exists.
        Stale read models are no failure of theirs: asked to catch up, not blamed."""
        reason, error = failure
        if isinstance(error, Decline):
            _declined(endpoint, error)
            return
        metrics.fallbacks_total.labels(endpoint=endpoint, reason=reason).inc()
        stale = isinstance(error, StaleReadModels)
        if isinstance(error, StaleReadModels):
            self._refresh_later(error.models)
            logs.fallback.info(
                "%s: read model changes pending (%s); served by legacy", endpoint, error
            )
        else:
            logs.fallback.warning(
                "%s: read model %s (%s); served by legacy", endpoint, reason, error
            )
        path = display_path(request.environ)
        started = time.perf_counter()
        comparisons = self._comparisons

        @after_this_request
        def record_fallback(response: Response) -> Response:
            row = ComparisonResult(
                endpoint=endpoint,
                stage=route.stage,
                served_by=LEGACY,
                outcome=STALE if stale else FALLBACK,
                method=request.method,
                path=path,
                legacy_status=response.status_code,
                legacy_ms=elapsed_ms(started),
                new_ms=new_ms,
                new_error=None if stale else describe(error),
            )
            response.call_on_close(lambda: comparisons.schedule_result(row))
            return response

    def _compare_after_response(
        self, wrapped: WrappedEndpoint, route: Route, served_by: str, served_ms: float | None
    ) -> None:
        """Once the response exists (error handlers included), take its answer; queue the
        comparison once the server has sent it.

        Queueing from ``call_on_close`` rather than ``after_request`` matters: a worker
        thread that starts comparing while the response is still being written competes
        with it for the GIL (and, on SQLite, runs its queries in this process), so the
        user would wait for part of the experiment. Every WSGI server closes the response
        after sending it; Flask's test client does so only when buffered (see
        :class:`cqrs_layer.testing.ClosingClient`).
        """
        copy = RequestCopy.of(request, self._settings.comparison_max_body)
        if copy is None:
            return
        started = time.perf_counter()
        comparisons = self._comparisons
        if served_by == READ_MODEL:
            served_view, other_view = wrapped.new_view, wrapped.legacy_view
        else:
            served_view, other_view = wrapped.legacy_view, wrapped.new_view
        read_models = tuple(self._read_model_names(wrapped.endpoint.name))

        @after_this_request
        def queue_comparison(response: Response) -> Response:
            answer = answer_of(response)
            if answer is not None:
                error = f"HTTP {answer.status}" if answer.status >= 500 else None
                ms = served_ms if served_ms is not None else elapsed_ms(started)
                comparison = Comparison(
                    wrapped.endpoint.name,
                    route.stage,
                    served_by,
                    copy,
                    Observation(answer, error, ms),
                    served_view,
                    other_view,
                    wrapped.options,
                    read_models,
                )
                response.call_on_close(lambda: comparisons.schedule(comparison))
            return response


#: Why the new path was not used: (reason ``error``/``timeout``/``stale``, the exception).
Failure = tuple[str, Exception]


class StaleReadModels(Exception):
    """The endpoint's read models have changes not yet applied: legacy answers now."""

    def __init__(self, models: list[str]) -> None:
        super().__init__(f"changes pending in {', '.join(models)}")
        self.models = models


def _decorated(view: View, decorators: Sequence[ViewDecorator]) -> View:
    for decorator in reversed(decorators):  # listed outermost first, like stacked @lines
        view = decorator(view)
    return view


def _declined(endpoint: str, declined: Decline) -> str:
    """Count a request the new path declined; legacy answers it."""
    metrics.declined_total.labels(endpoint=endpoint, reason=declined.reason).inc()
    logs.fallback.debug("%s: declined (%s); served by legacy", endpoint, declined.reason)
    request.environ[_SERVED_BY_KEY] = LEGACY
    return LEGACY


def _existing_view(app: Flask, endpoint: str) -> Callable[..., Any]:
    try:
        return app.view_functions[endpoint]
    except KeyError:
        similar = difflib.get_close_matches(endpoint, list(app.view_functions), n=5, cutoff=0.5)
        hint = f"; did you mean {', '.join(similar)}?" if similar else ""
        raise LookupError(f"no endpoint named {endpoint!r} in app {app.name!r}{hint}") from None


def _roll_back(session: Any) -> None:
    """Give the legacy path a clean transaction (PostgreSQL aborts it after an error)."""
    try:
        session.rollback()
    except SQLAlchemyError:
        logs.fallback.exception("rollback after a failed read path failed")
