"""One JSON error shape for every failure the API can report.

Body: ``{"error": {"status": 422, "code": "validation_error", "message": "...",
"fields": [{"field": "lines.0.quantity", "reason": "..."}]}}``. ``fields`` is present
only when specific inputs are to blame.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify
from pydantic import ValidationError
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException

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

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> tuple[Response, int]:
        status = exc.code or 500
        code = (exc.name or "error").lower().replace(" ", "_")
        return error_response(ApiError(exc.description or exc.name, status=status, code=code))

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> tuple[Response, int]:
        # Anything reaching here is a bug; the client still gets JSON, never an HTML trace.
        log.exception("unhandled error")
        return error_response(ApiError("internal server error", status=500, code="internal_error"))
