"""One JSON error shape for every failure the API can report.

Body: ``{"error": {"status": 422, "code": "validation_error", "message": "...",
"fields": [{"field": "lines.0.quantity", "reason": "..."}]}}``. ``fields`` is present
only when specific inputs are to blame.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, current_app, jsonify
from pydantic import ValidationError
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from .extensions import db

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An expected failure with an HTTP status; raising it aborts the request's transaction."""

    status = 400
    code = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        fields: list[dict[str, str]] | None = None,
        status: int | None = None,
        code: str | None = None,
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

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": self.status, "code": self.code, "message": self.message}
        if self.fields:
            body["fields"] = self.fields
        return {"error": body}


class BadRequest(ApiError):
    status, code = 400, "bad_request"


class NotFound(ApiError):
    status, code = 404, "not_found"


class Conflict(ApiError):
    status, code = 409, "conflict"


class Unprocessable(ApiError):
    status, code = 422, "validation_error"


class PreconditionFailed(ApiError):
    """An ``If-Match`` that names none of the resource's current version (its ETag)."""

    status, code = 412, "precondition_failed"


class PayloadTooLarge(ApiError):
    status, code = 413, "payload_too_large"


#: What a lost optimistic-concurrency race answers, on the legacy path as on the command
#: path (cqrs_layer's ConcurrencyConflict): the same status, code and message.
CONCURRENCY_CONFLICT_CODE = "concurrency_conflict"
CONCURRENCY_CONFLICT_MESSAGE = "the data was changed by another request; reload it and try again"


def validation_error_from_pydantic(exc: ValidationError, *, prefix: str = "") -> Unprocessable:
    fields = []
    for err in exc.errors(include_url=False):
        path = ".".join(str(part) for part in err["loc"])
        field = f"{prefix}{path}" if path else prefix or "body"
        fields.append({"field": field, "reason": err["msg"]})
    summary = "; ".join(f"{f['field']}: {f['reason']}" for f in fields)
    return Unprocessable(f"invalid input ({summary})", fields=fields)


def error_response(err: ApiError) -> tuple[Response, int]:
    # A failed request must leave no trace: drop whatever the view flushed so far.
    db.session.rollback()
    return jsonify(err.to_dict()), err.status


#: Headers of werkzeug's own (HTML) rendering that describe that body, not the error.
_BODY_HEADERS = {"content-type", "content-length"}


def http_error_response(exc: HTTPException) -> Response:
    """An HTTP error as JSON, keeping the headers it carries (``Allow`` on a 405,
    ``WWW-Authenticate`` on a 401, ``Retry-After``...): only the body changes."""
    status = exc.code or 500
    code = (exc.name or "error").lower().replace(" ", "_")
    response, _ = error_response(ApiError(exc.description or exc.name, status=status, code=code))
    response.status_code = status
    for name, value in exc.get_headers():
        if name.lower() not in _BODY_HEADERS:
            response.headers.add(name, value)
    return response


def body_too_large_response(_exc: RequestEntityTooLarge) -> tuple[Response, int]:
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    return error_response(
        PayloadTooLarge(f"request body is larger than the limit of {limit} bytes", field="body")
    )


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(ApiError, error_response)

    @app.errorhandler(ValidationError)
    def _pydantic(exc: ValidationError) -> tuple[Response, int]:
        return error_response(validation_error_from_pydantic(exc))

    @app.errorhandler(StaleDataError)
    def _stale(_exc: StaleDataError) -> tuple[Response, int]:
        # A version_id_col check failed: another request changed the row since we read it.
        return error_response(
            Conflict(CONCURRENCY_CONFLICT_MESSAGE, code=CONCURRENCY_CONFLICT_CODE)
        )

    app.register_error_handler(HTTPException, http_error_response)
    app.register_error_handler(RequestEntityTooLarge, body_too_large_response)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> tuple[Response, int]:
        # Anything reaching here is a bug; the client still gets JSON, never an HTML trace.
        log.exception("unhandled error")
        return error_response(ApiError("internal server error", status=500, code="internal_error"))
