"""Serving a wrapped write endpoint: its command path, the legacy view with an
``Idempotency-Key``, and whichever path serves a request, bounded.

``Idempotency-Key`` holds on both paths, on one table (:mod:`cqrs_layer.write.idempotency`),
so a key used on one stage is honoured on the other. It is looked at inside the
endpoint's declared decorators (its auth), as the command itself is built: a request they
refuse never sees another's stored response. For the legacy view that means they run
twice when a key is sent: once around the key check, once inside the view.

Whichever path serves the request, it runs under the write bound
(:mod:`cqrs_layer.write.bounded`), and a refusal is rendered by the app's renderer with its
``Retry-After``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Request, Response, current_app, request
from flask.typing import ResponseReturnValue
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import scoped_session

from ..core import logs
from ..core.errors import CommandRejected, ValidationFailed, rendered
from ..core.messages import Command, Query
from ..core.settings import Settings
from ..core.sql import bound_transaction
from ..write import claims, idempotency
from ..write.bounded import bounded_writes
from ..write.bus import CommandBus
from ..write.uow import UnitOfWork, before_commit

Build = Callable[[Request, dict[str, Any]], Any]
M = TypeVar("M", Command, Query)
Respond = Callable[[Any, dict[str, Any]], ResponseReturnValue]
RenderError = Callable[[CommandRejected], ResponseReturnValue]
View = Callable[..., Any]


class Writes:
    """One app's write endpoints: their command views, keyed legacy views, and serving."""

    def __init__(
        self,
        session: scoped_session[Any],
        engine: Engine,
        settings: Settings,
        command_bus: CommandBus,
        render_error: RenderError,
    ) -> None:
        self._session = session
        self._engine = engine
        self._timeout_ms = settings.write_timeout_ms
        self._command_bus = command_bus
        self._render_error = render_error

    def serve(
        self, endpoint: str, view: View, args: tuple[Any, ...], view_args: dict[str, Any]
    ) -> Response:
        """``view``'s response, its writes bounded; a refusal rendered (503 on a timeout)."""
        try:
            with bounded_writes(self._session, self._timeout_ms, endpoint):
                return current_app.make_response(view(*args, **view_args))
        except CommandRejected as error:
            return rendered(error, self._render_error)

    # ------------------------------------------------------------ the command path

    def command_view(self, endpoint: str, build: Build, respond: Respond) -> View:
        def serve_command(**view_args: Any) -> ResponseReturnValue:
            idem = idempotency.from_request(endpoint, request)
            if idem is not None:
                earlier = self._earlier_answer(idem)
                if earlier is not None:
                    return earlier
            command = built(build, view_args, Command)
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
            return self._winners_answer(idem)
        except Exception:
            earlier = self._answer_after_failure(idem)
            if earlier is None:
                raise
            return earlier
        return responses[0]

    # ------------------------------------------------------------ the legacy view, with a key

    def keyed_legacy_view(self, endpoint: str, legacy_view: View) -> View:
        """The legacy view for a request carrying ``Idempotency-Key``."""

        def serve_legacy_with_key(*args: Any, **view_args: Any) -> ResponseReturnValue:
            idem = idempotency.from_request(endpoint, request)
            assert idem is not None, "served only to requests carrying the header"
            earlier = self._earlier_answer(idem)
            if earlier is not None:
                return earlier
            return self._run_claiming(idem, legacy_view, args, view_args)

        return serve_legacy_with_key

    def _run_claiming(
        self,
        idem: idempotency.IdempotentRequest,
        legacy_view: View,
        args: tuple[Any, ...],
        view_args: dict[str, Any],
    ) -> Response:
        """Run the view with its key claimed in its first commit; keep its response on
        the claim if it succeeded, give the claim up if it failed."""
        with claims.claiming(idem) as claim:
            try:
                response = current_app.make_response(legacy_view(*args, **view_args))
            except Exception:
                earlier = self._after_failed_view(claim)
                if earlier is None:
                    raise
                return earlier
        if claim.lost:  # the view caught the refused commit and answered something else
            return self._winners_answer(idem)
        if not idempotency.succeeded(response):
            return self._after_failed_view(claim) or response
        if claim.claimed:
            self._record("store the response of", idem, idempotency.complete, response)
        else:
            # The view committed nothing through the session: keep its answer all the same.
            self._record("store the response of", idem, idempotency.save, response)
        return response

    def _after_failed_view(self, claim: claims.Claim) -> Response | None:
        """The answer to give instead of the view's failure, if any: the winner's when a
        concurrent request with the key got in first. A claim the view made before it
        failed is given up (what the view committed before failing stays, as without a
        key)."""
        if claim.lost:
            return self._winners_answer(claim.idem)
        if claim.claimed:
            self._roll_back()
            self._record("give up the claim of", claim.idem, idempotency.release)
            return None
        return self._answer_after_failure(claim.idem)

    # ------------------------------------------------------------ answers from the table

    def _earlier_answer(self, idem: idempotency.IdempotentRequest) -> Response | None:
        return idempotency.earlier_answer(self._engine.connect, idem, wait_ms=self._timeout_ms)

    def _winners_answer(self, idem: idempotency.IdempotentRequest) -> Response:
        """The answer of the request that won the key from this one (whose writes are
        rolled back): its response, once it has one."""
        self._roll_back()
        earlier = self._earlier_answer(idem)
        if earlier is None:  # it failed meanwhile and gave the key up: a retry may proceed
            raise idempotency.KeyInUse(
                "a concurrent request with this Idempotency-Key was being processed; retry",
                field=idempotency.HEADER,
            )
        return earlier

    def _answer_after_failure(self, idem: idempotency.IdempotentRequest) -> Response | None:
        """A write that failed may have failed because a concurrent request with the same
        key got in first (it wrote the same unique row, took the last unit): that
        request's answer is this one's too. None when no request holds the key."""
        self._roll_back()
        return self._earlier_answer(idem)

    def _record(
        self,
        what: str,
        idem: idempotency.IdempotentRequest,
        write: Callable[..., None],
        *extra: Any,
    ) -> None:
        """Write to the key's row in a transaction of its own, bounded like the write;
        a failure is logged, never the request's: its write has committed."""
        try:
            with self._engine.begin() as connection:
                bound_transaction(connection, self._timeout_ms)
                write(connection, idem, *extra)
        except idempotency.KeyAlreadyUsed:
            pass  # a concurrent request's response is kept instead: as good as ours
        except Exception:
            logs.writes.exception(
                "%s: could not %s Idempotency-Key %r; retries with it will be answered 409",
                idem.endpoint,
                what,
                idem.key,
            )

    def _roll_back(self) -> None:
        try:
            self._session.rollback()
        except SQLAlchemyError:
            logs.writes.exception("rollback after a failed write failed")


def built(build: Build, view_args: dict[str, Any], expected: type[M]) -> M:
    """The message ``build`` makes of the current request: its validation errors are the
    client's (422), a message of another kind is the wiring's mistake."""
    try:
        message = build(request, view_args)
    except ValidationError as exc:
        raise ValidationFailed.from_pydantic(exc) from exc
    if not isinstance(message, expected):
        raise TypeError(f"build must return a {expected.__name__}, got {type(message).__name__}")
    return message
