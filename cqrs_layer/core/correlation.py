"""The correlation id: one id per request (or command) carried into logs and the outbox.

A client may send ``X-Request-ID``; a well-formed one is kept so a whole call chain shares
it, anything else is replaced by a fresh id (the outbox column is 64 characters, and ids
end up in logs, so only a safe alphabet is accepted). Every response echoes it back.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from flask import Flask, Response, has_request_context, request

HEADER = "X-Request-ID"
_WELL_FORMED = re.compile(r"^[A-Za-z0-9._:\-]{1,64}$")
# Kept on the request, not on ``g``: an app context (and so ``g``) can outlive a request.
_ENVIRON_KEY = "cqrs.correlation_id"

# Set while a command runs outside any request (CLI, worker), or to override the request's.
_current: ContextVar[str | None] = ContextVar("cqrs_correlation_id", default=None)


def new_correlation_id() -> str:
    return uuid.uuid4().hex


def current_correlation_id() -> str | None:
    explicit = _current.get()
    if explicit is not None:
        return explicit
    if has_request_context():
        value = request.environ.get(_ENVIRON_KEY)
        return str(value) if value is not None else None
    return None


@contextmanager
def correlation_scope(correlation_id: str | None = None) -> Iterator[str]:
    """Run a block under ``correlation_id``, or keep the current one, or make one up."""
    chosen = correlation_id or current_correlation_id() or new_correlation_id()
    token = _current.set(chosen)
    try:
        yield chosen
    finally:
        _current.reset(token)


def install(app: Flask) -> None:
    """Take the id from each request (or make one) and echo it on every response."""

    @app.before_request
    def _take_request_id() -> None:
        sent = request.headers.get(HEADER, "")
        request.environ[_ENVIRON_KEY] = sent if _WELL_FORMED.match(sent) else new_correlation_id()

    @app.after_request
    def _echo_request_id(response: Response) -> Response:
        correlation_id = current_correlation_id()
        if correlation_id is not None:
            response.headers[HEADER] = correlation_id
        return response
