"""Serving a wrapped write endpoint: its command path, and whichever path serves it, bounded.

The command path builds the command from the request and dispatches it, honouring
``Idempotency-Key`` in the command's own transaction. Whichever path serves the request
(the command or the legacy view), it runs under the write bound
(:mod:`cqrs_layer.write.bounded`), and a refusal is rendered by the app's renderer with its
``Retry-After``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Request, Response, current_app, request
from flask.typing import ResponseReturnValue
from pydantic import ValidationError
from sqlalchemy.orm import scoped_session

from ..core.errors import CommandRejected, ValidationFailed, rendered
from ..core.messages import Command
from ..core.settings import Settings
from ..write import idempotency
from ..write.bounded import bounded_writes
from ..write.bus import CommandBus
from ..write.uow import UnitOfWork, before_commit

Build = Callable[[Request, dict[str, Any]], Any]
Respond = Callable[[Any, dict[str, Any]], ResponseReturnValue]
RenderError = Callable[[CommandRejected], ResponseReturnValue]


class Writes:
    """One app's write endpoints: their command views, and serving either path."""

    def __init__(
        self,
        session: scoped_session[Any],
        settings: Settings,
        command_bus: CommandBus,
        render_error: RenderError,
    ) -> None:
        self._session = session
        self._timeout_ms = settings.write_timeout_ms
        self._command_bus = command_bus
        self._render_error = render_error

    def serve(
        self,
        endpoint: str,
        view: Callable[..., Any],
        args: tuple[Any, ...],
        view_args: dict[str, Any],
    ) -> Response:
        """``view``'s response, its writes bounded; a refusal rendered (503 on a timeout)."""
        try:
            with bounded_writes(self._session, self._timeout_ms, endpoint):
                return current_app.make_response(view(*args, **view_args))
        except CommandRejected as error:
            return rendered(error, self._render_error)

    # ------------------------------------------------------------ the command path

    def command_view(self, endpoint: str, build: Build, respond: Respond) -> Callable[..., Any]:
        def serve_command(**view_args: Any) -> ResponseReturnValue:
            idem = idempotency.from_request(endpoint, request)
            if idem is not None:
                replay = idempotency.replay_if_seen(self._session.connection(), idem)
                if replay is not None:
                    return replay
            command = _build(build, view_args)
            if idem is None:
                return respond(self._command_bus.dispatch(command), view_args)
            return self._dispatch_idempotently(idem, command, respond, view_args)

        return serve_command

    def _dispatch_idempotently(
        self,
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
                self._command_bus.dispatch(command)
        except idempotency.KeyAlreadyUsed:
            # Our writes were rolled back; the winner's response answers this request.
            replay = idempotency.replay_if_seen(self._session.connection(), idem)
            if replay is None:
                raise
            return replay
        return responses[0]


def _build(build: Build, view_args: dict[str, Any]) -> Command:
    try:
        command = build(request, view_args)
    except ValidationError as exc:
        raise ValidationFailed.from_pydantic(exc) from exc
    if not isinstance(command, Command):
        raise TypeError(f"build must return a Command, got {type(command).__name__}")
    return command
