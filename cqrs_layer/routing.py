"""Wrapping existing Flask endpoints, by endpoint name, with a command or query path.

The legacy view function is left untouched: ``app.view_functions[endpoint]`` is replaced by
a wrapper that asks a :class:`ModeSource` which path serves this request, runs it, and
marks the response with ``X-CQRS-Served-By``. The new path is wrapped in the same auth
decorators the legacy view has (``decorators=``), since it does not go through them.
"""

from __future__ import annotations

import difflib
import functools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from flask import Flask, Request, Response, after_this_request, current_app, request
from flask.typing import ResponseReturnValue
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException

from . import comparisons, idempotency, rollout, shadow
from .deadline import Deadline, DeadlineExceeded, enforced
from .errors import CommandRejected, ValidationFailed
from .messages import Command, Query
from .uow import UnitOfWork, before_commit

if TYPE_CHECKING:
    from .ext import CQRSState
    from .rollout import Route

log = logging.getLogger(__name__)

SERVED_BY_HEADER = "X-CQRS-Served-By"
_SERVED_BY_KEY = "cqrs.served_by"  # on the request: an app context can outlive it
EndpointKind = Literal["read", "write"]
LEGACY = "legacy"
READ_MODEL = "read-model"
#: The modes each kind of endpoint can be in; the first is the safe fallback.
MODES: dict[str, tuple[str, ...]] = {"read": (LEGACY, "read-model"), "write": (LEGACY, "command")}

Build = Callable[[Request, dict[str, Any]], Any]
Respond = Callable[[Any, dict[str, Any]], ResponseReturnValue]
ViewDecorator = Callable[[Callable[..., Any]], Callable[..., Any]]


class ModeSource(Protocol):
    """Decides which path serves an endpoint; asked on every request."""

    def mode_for(self, endpoint: str, kind: str) -> str: ...


class StaticModeSource:
    """Modes from config: ``CQRS_ENDPOINT_MODES`` per endpoint, else the per-kind default.

    Config is read per request, so changing ``app.config`` takes effect immediately.
    """

    def mode_for(self, endpoint: str, kind: str) -> str:
        config = current_app.config
        configured = config["CQRS_ENDPOINT_MODES"].get(endpoint)
        if configured is not None:
            return str(configured)
        key = "CQRS_DEFAULT_WRITE_MODE" if kind == "write" else "CQRS_DEFAULT_READ_MODE"
        return str(config[key])


@dataclass(frozen=True)
class WrappedEndpoint:
    endpoint: str
    kind: EndpointKind
    legacy_view: Callable[..., Any]
    new_view: Callable[..., Any]
    #: Read endpoint: the read models its query path reads (the promotion gate checks them).
    read_models: tuple[str, ...] = ()
    #: Write endpoint: the tables it writes (the gate blocks promotions of their readers).
    writes: frozenset[str] = frozenset()
    #: Read endpoint: how its comparisons normalize answers (a ``compare.CompareOptions``).
    compare: Any = None


def default_read_respond(result: Any, _view_args: dict[str, Any]) -> ResponseReturnValue:
    return result


def default_write_respond(result: Any, _view_args: dict[str, Any]) -> ResponseReturnValue:
    return result if result is not None else ("", 204)


def wrap_endpoint(
    app: Flask,
    state: CQRSState,
    endpoint: str,
    kind: EndpointKind,
    build: Build,
    respond: Respond | None = None,
    decorators: Sequence[ViewDecorator] = (),
    *,
    read_models: Sequence[str] = (),
    writes: Sequence[str] = (),
    compare: Any = None,
) -> WrappedEndpoint:
    legacy_view = _existing_view(app, endpoint)
    if endpoint in state.endpoints:
        raise ValueError(f"endpoint {endpoint!r} is already wrapped by cqrs_layer")
    configured = app.config["CQRS_ENDPOINT_MODES"].get(endpoint)
    if configured is not None:
        try:
            rollout.normalize_stage(kind, configured)
        except CommandRejected:
            raise ValueError(
                f"CQRS_ENDPOINT_MODES[{endpoint!r}] is {configured!r}; a {kind} endpoint "
                f"takes one of {', '.join(rollout.STAGES[kind])}"
            ) from None
    if kind == "write":
        new_view = _command_view(state, endpoint, build, respond or default_write_respond)
    else:
        new_view = _query_view(state, build, respond or default_read_respond)
    for decorator in reversed(decorators):  # listed outermost first, like stacked @lines
        new_view = decorator(new_view)

    @functools.wraps(legacy_view)
    def cqrs_endpoint(*args: Any, **view_args: Any) -> Response:
        route = state.flags.route(endpoint, kind, request)
        if kind == "read":
            return serve_read(state, wrapped, route, args, view_args)
        served_by = rollout.COMMAND if route.serve_new else LEGACY
        request.environ[_SERVED_BY_KEY] = served_by
        if route.serve_new:
            try:
                rv = new_view(*args, **view_args)
            except CommandRejected as error:
                rv = state.render_error(error)
        else:
            rv = legacy_view(*args, **view_args)
        response = current_app.make_response(rv)
        response.headers[SERVED_BY_HEADER] = served_by
        return response

    app.view_functions[endpoint] = cqrs_endpoint
    wrapped = WrappedEndpoint(
        endpoint, kind, legacy_view, new_view, tuple(read_models), frozenset(writes), compare
    )
    state.endpoints[endpoint] = wrapped
    return wrapped


def mark_served_by(response: Response) -> Response:
    """after_request: responses rendered by error handlers (aborts in auth decorators,
    host exceptions) still say which path served them."""
    served = request.environ.get(_SERVED_BY_KEY)
    if served is not None and SERVED_BY_HEADER not in response.headers:
        response.headers[SERVED_BY_HEADER] = served
    return response


def _existing_view(app: Flask, endpoint: str) -> Callable[..., Any]:
    try:
        return app.view_functions[endpoint]
    except KeyError:
        similar = difflib.get_close_matches(endpoint, list(app.view_functions), n=5, cutoff=0.5)
        hint = f"; did you mean {', '.join(similar)}?" if similar else ""
        raise LookupError(f"no endpoint named {endpoint!r} in app {app.name!r}{hint}") from None


def _build(build: Build, view_args: dict[str, Any]) -> Any:
    try:
        return build(request, view_args)
    except ValidationError as exc:
        raise ValidationFailed.from_pydantic(exc) from exc


def _query_view(state: CQRSState, build: Build, respond: Respond) -> Callable[..., Any]:
    def serve_query(**view_args: Any) -> ResponseReturnValue:
        query = _build(build, view_args)
        if not isinstance(query, Query):
            raise TypeError(f"build must return a Query, got {type(query).__name__}")
        return respond(state.query_bus.ask(query), view_args)

    return serve_query


def _command_view(
    state: CQRSState, endpoint: str, build: Build, respond: Respond
) -> Callable[..., Any]:
    def serve_command(**view_args: Any) -> ResponseReturnValue:
        idem = idempotency.from_request(endpoint, request)
        if idem is not None:
            replay = idempotency.replay_if_seen(state.db.session.connection(), idem)
            if replay is not None:
                return replay
        command = _build(build, view_args)
        if not isinstance(command, Command):
            raise TypeError(f"build must return a Command, got {type(command).__name__}")
        if idem is None:
            return respond(state.command_bus.dispatch(command), view_args)
        return _dispatch_idempotently(state, idem, command, respond, view_args)

    return serve_command


def _dispatch_idempotently(
    state: CQRSState,
    idem: idempotency.IdempotentRequest,
    command: Command,
    respond: Respond,
    view_args: dict[str, Any],
) -> Response:
    responses: list[Response] = []

    def store_response(uow: UnitOfWork, result: Any) -> None:
        # Built inside the transaction so the stored response commits with the writes.
        response = current_app.make_response(respond(result, view_args))
        idempotency.save(uow.session.connection(), idem, response)
        responses.append(response)

    try:
        with before_commit(store_response):
            state.command_bus.dispatch(command)
    except idempotency.KeyAlreadyUsed:
        # Our writes were rolled back; the winner's response is the answer to this request.
        replay = idempotency.replay_if_seen(state.db.session.connection(), idem)
        if replay is None:
            raise
        return replay
    return responses[0]


# ---------------------------------------------------------------- serving a read


def serve_read(
    state: CQRSState,
    wrapped: WrappedEndpoint,
    route: Route,
    args: tuple[Any, ...],
    view_args: dict[str, Any],
) -> Response:
    """Serve a read per ``route``: the new path (falling back to legacy when it fails or
    is late, if the route allows), else legacy; queue a comparison when sampled. The
    header says which path actually served."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    started = time.perf_counter()
    if route.serve_new:
        request.environ[_SERVED_BY_KEY] = READ_MODEL
        response, failure = _try_new_path(app, state, wrapped, args, view_args)
        new_ms = shadow.elapsed_ms(started)
        if failure is None and response is not None:
            if route.compare:
                _compare_after_response(app, wrapped, route, READ_MODEL, new_ms)
            response.headers[SERVED_BY_HEADER] = READ_MODEL
            return response
        assert failure is not None
        if not route.fallback:
            raise failure[1]
        _fall_back(app, wrapped.endpoint, route, failure, new_ms)
    elif route.compare:
        _compare_after_response(app, wrapped, route, LEGACY, None)
    request.environ[_SERVED_BY_KEY] = LEGACY
    response = app.make_response(wrapped.legacy_view(*args, **view_args))
    response.headers[SERVED_BY_HEADER] = LEGACY
    return response


#: Why the new path was not used: (reason ``error``/``timeout``, the exception).
Failure = tuple[str, Exception]


def _try_new_path(
    app: Flask,
    state: CQRSState,
    wrapped: WrappedEndpoint,
    args: tuple[Any, ...],
    view_args: dict[str, Any],
) -> tuple[Response | None, Failure | None]:
    """The new path's response, or why it cannot be used. The database stops its queries
    at ``CQRS_READ_TIMEOUT_MS``; Python time past it is measured and the answer dropped."""
    session = state.db.session
    deadline = Deadline(float(comparisons.setting(app.config, "CQRS_READ_TIMEOUT_MS")))
    try:
        with enforced(session.connection(), deadline):
            try:
                rv = wrapped.new_view(*args, **view_args)
            except CommandRejected as error:  # a legitimate answer (404, 422...)
                rv = state.render_error(error)
            response = app.make_response(rv)
    except HTTPException:
        raise  # an answer too (an auth decorator's abort): the app renders it
    except DeadlineExceeded as exceeded:
        _roll_back(session)
        return None, ("timeout", exceeded)
    except Exception as error:
        _roll_back(session)
        return None, ("error", error)
    if deadline.expired():
        return None, ("timeout", deadline.exceeded())
    if response.status_code >= 500:
        return None, ("error", RuntimeError(f"HTTP {response.status_code}"))
    return response, None


def _roll_back(session: Any) -> None:
    """Give the legacy path a clean transaction (PostgreSQL aborts it after an error)."""
    try:
        session.rollback()
    except SQLAlchemyError:
        log.exception("rollback after a failed read path failed")


def _fall_back(app: Flask, endpoint: str, route: Route, failure: Failure, new_ms: float) -> None:
    """Count and log the failure; record it (with the legacy answer) once it exists."""
    reason, error = failure
    comparisons.fallbacks_total.labels(endpoint=endpoint, reason=reason).inc()
    log.warning("%s: read model %s (%s); served by legacy", endpoint, reason, error)
    path = shadow.display_path(request.environ)
    started = time.perf_counter()

    @after_this_request
    def record_fallback(response: Response) -> Response:
        row = comparisons.ComparisonRecord(
            endpoint=endpoint,
            stage=route.stage,
            served_by=LEGACY,
            outcome=comparisons.FALLBACK,
            method=request.method,
            path=path,
            legacy_status=response.status_code,
            legacy_ms=shadow.elapsed_ms(started),
            new_ms=new_ms,
            new_error=shadow.describe(error),
        )
        response.call_on_close(lambda: shadow.schedule_record(app, row))
        return response


def _compare_after_response(
    app: Flask, wrapped: WrappedEndpoint, route: Route, served_by: str, served_ms: float | None
) -> None:
    """Once the response exists (error handlers included), take its answer; queue the
    comparison once the server has sent it.

    Queueing from ``call_on_close`` rather than ``after_request`` matters: a worker thread
    that starts comparing while the response is still being written competes with it for
    the GIL (and, on SQLite, runs its queries in this process), so the user would wait for
    part of the experiment. Every WSGI server closes the response after sending it; Flask's
    test client does so only when buffered (see :class:`cqrs_layer.testing.ClosingClient`).
    """
    copy = shadow.RequestCopy.of(
        request, int(comparisons.setting(app.config, "CQRS_COMPARISON_MAX_BODY"))
    )
    if copy is None:
        return
    started = time.perf_counter()

    @after_this_request
    def queue_comparison(response: Response) -> Response:
        answer = shadow.answer_of(response)
        if answer is not None:
            error = f"HTTP {answer.status}" if answer.status >= 500 else None
            ms = served_ms if served_ms is not None else shadow.elapsed_ms(started)
            served = shadow.Observation(answer, error, ms)
            comparison = shadow.Comparison(wrapped.endpoint, route.stage, served_by, copy, served)
            response.call_on_close(lambda: shadow.schedule(app, wrapped, comparison))
        return response
