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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from flask import Flask, Request, Response, current_app, request
from flask.typing import ResponseReturnValue
from pydantic import ValidationError

from . import idempotency
from .errors import CommandRejected, ValidationFailed
from .messages import Command, Query
from .uow import UnitOfWork, before_commit

if TYPE_CHECKING:
    from .ext import CQRSState

log = logging.getLogger(__name__)

SERVED_BY_HEADER = "X-CQRS-Served-By"
_SERVED_BY_KEY = "cqrs.served_by"  # on the request: an app context can outlive it
EndpointKind = Literal["read", "write"]
LEGACY = "legacy"
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
) -> WrappedEndpoint:
    legacy_view = _existing_view(app, endpoint)
    if endpoint in state.endpoints:
        raise ValueError(f"endpoint {endpoint!r} is already wrapped by cqrs_layer")
    configured = app.config["CQRS_ENDPOINT_MODES"].get(endpoint)
    if configured is not None and configured not in MODES[kind]:
        raise ValueError(
            f"CQRS_ENDPOINT_MODES[{endpoint!r}] is {configured!r}; a {kind} endpoint takes "
            f"one of {', '.join(MODES[kind])}"
        )
    if kind == "write":
        new_view = _command_view(state, endpoint, build, respond or default_write_respond)
    else:
        new_view = _query_view(state, build, respond or default_read_respond)
    for decorator in reversed(decorators):  # listed outermost first, like stacked @lines
        new_view = decorator(new_view)

    @functools.wraps(legacy_view)
    def cqrs_endpoint(*args: Any, **view_args: Any) -> Response:
        mode = _mode(state, endpoint, kind)
        request.environ[_SERVED_BY_KEY] = mode
        if mode == LEGACY:
            rv = legacy_view(*args, **view_args)
        else:
            try:
                rv = new_view(*args, **view_args)
            except CommandRejected as error:
                rv = state.render_error(error)
        response = current_app.make_response(rv)
        response.headers[SERVED_BY_HEADER] = mode
        return response

    app.view_functions[endpoint] = cqrs_endpoint
    wrapped = WrappedEndpoint(endpoint, kind, legacy_view, new_view)
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


def _mode(state: CQRSState, endpoint: str, kind: str) -> str:
    mode = state.modes.mode_for(endpoint, kind)
    if mode in MODES[kind]:
        return mode
    # A bad flag value must not take the endpoint down: serve the legacy path.
    log.error("unknown mode %r for %s endpoint %s; serving legacy", mode, kind, endpoint)
    return LEGACY


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
