"""One function that puts the shop on the toolkit: ``init_cqrs(app)``.

It registers every read model (change capture, installed by the migrations, keeps them
exact whatever writes the shop's tables), the hand-written projections of the hot path,
the commands and their handlers, the query handlers, and wraps
every write endpoint with its command path and every slow read endpoint with its
read-model path. Which path serves a request is decided per request by the
endpoint's flag (``flask cqrs flags``; without one, the ``CQRS_DEFAULT_*_STAGE``
settings), so wiring changes no behaviour by itself: with the defaults every endpoint is
still served by its legacy view.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask, Request, Response
from sqlalchemy import Connection

from cqrs_layer import CQRS, CommandRejected, Query
from cqrs_layer.schema import missing_tables

from ..errors import ApiError, error_response
from ..extensions import db
from ..health import add_schema_check
from .endpoints import WRITE_ENDPOINTS
from .handlers import HANDLERS
from .projections import PROJECTIONS
from .queries import READ_ENDPOINTS, ReadEndpoint
from .read_models import READ_MODELS

cqrs = CQRS()


def render_toolkit_error(error: CommandRejected) -> tuple[Response, int]:
    """Toolkit refusals (idempotency key misuse, concurrency conflicts, command validation,
    writes that waited too long for a lock) rendered by the shop's own error path: the same
    body shape, and the session rolled back like after any other API error. (The toolkit
    adds ``Retry-After`` where a refusal has one.)"""
    return error_response(
        ApiError(error.message, fields=error.fields, status=error.status, code=error.code)
    )


def init_cqrs(app: Flask) -> None:
    app.config.setdefault("CQRS_ERROR_RENDERER", render_toolkit_error)
    cqrs.init_app(app, db)
    add_schema_check(app, _toolkit_tables_missing)
    for model in READ_MODELS:
        cqrs.register_read_model(model, app=app)
    for projection in PROJECTIONS:
        cqrs.register_projection(projection, app=app)
    for command_type, handler in HANDLERS.items():
        cqrs.register_command(command_type, handler, app=app)
    for write in WRITE_ENDPOINTS:
        cqrs.command_endpoint(
            write.endpoint,
            build=write.build,
            respond=write.respond,
            writes=write.writes,
            app=app,
        )
    for read in READ_ENDPOINTS:
        cqrs.register_query(read.query_type, _answering_errors(read.handler), app=app)
        cqrs.query_endpoint(
            read.endpoint,
            build=_query_builder(read),
            decorators=read.decorators,
            read_models=read.read_models,
            app=app,
        )


def _toolkit_tables_missing(connection: Connection) -> str | None:
    missing = missing_tables(connection)
    return f"the toolkit's tables {', '.join(missing)} are missing" if missing else None


def _query_builder(read: ReadEndpoint) -> Callable[[Request, dict[str, Any]], Query]:
    # The shop's query builders take the view arguments like the view function does.
    def build(_request: Request, view_args: dict[str, Any]) -> Query:
        with _shop_errors_as_answers():
            return read.build(**view_args)

    return build


def _answering_errors(
    handler: Callable[[Any, Connection], Any],
) -> Callable[[Any, Connection], Any]:
    def handle(query: Any, connection: Connection) -> Any:
        with _shop_errors_as_answers():
            return handler(query, connection)

    return handle


@contextmanager
def _shop_errors_as_answers() -> Iterator[None]:
    """The shop's query code refuses bad input with its own ``ApiError`` (a 404 or 422 is
    a legitimate answer). The toolkit tells answers from failures by type: anything but a
    ``CommandRejected`` from the read path counts as a broken read model and is served by
    the legacy path instead. Re-raise it as the toolkit's refusal, with the same status,
    code, message and fields, so the read model's own answer is the one served."""
    try:
        yield
    except ApiError as error:
        raise CommandRejected(
            error.message, fields=error.fields, status=error.status, code=error.code
        ) from error


__all__ = ["cqrs", "init_cqrs", "render_toolkit_error"]
