"""The errors a command or query can be refused with, and how they become HTTP responses.

Every toolkit error carries its HTTP status, a stable machine ``code``, a human ``message``
and optionally the ``fields`` to blame. They render as
``{"error": {"status", "code", "message", "fields": [{"field", "reason"}]}}`` (``fields``
only when some input is to blame); one the client should retry later also carries a
``Retry-After`` header (:func:`rendered`). Exceptions that are not the toolkit's are never
caught here: the host app's own error handlers keep rendering them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response, current_app, jsonify
from flask.typing import ResponseReturnValue
from pydantic import ValidationError


class CommandRejected(Exception):
    """A command or query refused for a reason the client can act on; nothing was written."""

    status = 400
    code = "bad_request"
    #: Seconds after which a retry may succeed (the ``Retry-After`` header), if it may.
    retry_after: int | None = None

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        fields: list[dict[str, str]] | None = None,
        status: int | None = None,
        code: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.fields = list(fields or [])
        if field is not None:
            self.fields.append({"field": field, "reason": message})
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        if retry_after is not None:
            self.retry_after = retry_after

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": self.status, "code": self.code, "message": self.message}
        if self.fields:
            body["fields"] = self.fields
        return {"error": body}


class ValidationFailed(CommandRejected):
    status, code = 422, "validation_error"

    @classmethod
    def from_pydantic(cls, exc: ValidationError, *, prefix: str = "") -> ValidationFailed:
        fields = []
        for err in exc.errors(include_url=False):
            path = ".".join(str(part) for part in err["loc"])
            field = f"{prefix}{path}" if path else prefix or "body"
            fields.append({"field": field, "reason": err["msg"]})
        summary = "; ".join(f"{f['field']}: {f['reason']}" for f in fields)
        return cls(f"invalid input ({summary})", fields=fields)


class NotFound(CommandRejected):
    status, code = 404, "not_found"


class DomainRuleViolated(CommandRejected):
    status, code = 409, "conflict"


class ConcurrencyConflict(CommandRejected):
    """Someone else changed the same data first; re-read and retry."""

    status, code = 409, "concurrency_conflict"


class WriteTimedOut(CommandRejected):
    """A write gave up waiting for a lock (or a statement) past ``CQRS_WRITE_TIMEOUT_MS``
    and was rolled back whole: the service is busy, not the request wrong; retry later."""

    status, code = 503, "write_timeout"


class UnguardedWriteError(RuntimeError):
    """Strict write guard: a guarded table was written outside a command.

    Not a :class:`CommandRejected`: it is not something the client did but a write path
    that skips the events, refused on purpose. The extension answers it with a 503 naming
    the tables (see :func:`unguarded_write_refusal`), never a bare 500.
    """


def unguarded_write_refusal(error: UnguardedWriteError) -> CommandRejected:
    """What the client is told when strict mode refuses a write: the service cannot take
    this write on this path right now (switch the endpoint to its command path)."""
    return CommandRejected(str(error), status=503, code="unguarded_write")


def render_json_error(error: CommandRejected) -> tuple[Response, int]:
    return jsonify(error.to_dict()), error.status


class Decline(Exception):
    """Raised by an endpoint's ``build``: this request is the legacy view's to answer.

    For the cases a new path does not take over (yet): an HTML form that fails
    validation and is re-rendered with its errors, an edge case the view handles its own
    way. The legacy view answers (at every stage), ``X-CQRS-Served-By`` says ``legacy``
    and the decline is counted with its reason (``cqrs_declined_total``; keep it a short
    fixed phrase: it is a metric label). Nothing is an error.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def rendered(
    error: CommandRejected, render: Callable[[CommandRejected], ResponseReturnValue]
) -> Response:
    """``error`` as ``render`` (the app's renderer) answers it, with its ``Retry-After``:
    a renderer need not know about the header."""
    response = current_app.make_response(render(error))
    if error.retry_after is not None:
        response.headers["Retry-After"] = str(error.retry_after)
    return response
