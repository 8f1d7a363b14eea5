"""The command pipeline's standard middleware, outermost first in :func:`standard_pipeline`.

Each is ``middleware(command, next_handler) -> result``. The transaction middleware is
built per app with what it needs: the app's session and its projections.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from flask import current_app
from pydantic import ValidationError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from ..core import metrics, own_changes, signals
from ..core.correlation import correlation_scope, current_correlation_id
from ..core.errors import CommandRejected, ConcurrencyConflict, ValidationFailed
from ..core.messages import Command
from .bus import Middleware, NextHandler
from .uow import ProjectionApplier, UnitOfWork, active_unit_of_work, send_logging_failures


def correlation_middleware(command: Command, next_handler: NextHandler) -> Any:
    """Every command runs under a correlation id (the request's, or a new one)."""
    with correlation_scope():
        return next_handler(command)


def timing_middleware(command: Command, next_handler: NextHandler) -> Any:
    name = type(command).__name__
    started = time.perf_counter()
    outcome: str = "error"
    result: Any = None
    error: Exception | None = None
    try:
        result = next_handler(command)
        outcome = "ok"
        return result
    except CommandRejected as exc:
        outcome, error = "rejected", exc
        raise
    except Exception as exc:
        error = exc
        raise
    finally:
        duration = time.perf_counter() - started
        metrics.commands_total.labels(command=name, outcome=outcome).inc()
        metrics.command_duration_seconds.labels(command=name).observe(duration)
        send_logging_failures(
            signals.command_handled,
            current_app._get_current_object(),  # type: ignore[attr-defined]
            command=command,
            result=result,
            error=error,
            duration_s=duration,
        )


def validation_middleware(command: Command, next_handler: NextHandler) -> Any:
    """A pydantic ValidationError raised inside the pipeline (a handler building a nested
    command or value object from client data) is the client's fault: 422, not 500."""
    try:
        return next_handler(command)
    except ValidationError as exc:
        raise ValidationFailed.from_pydantic(exc) from exc


def transaction_middleware(
    session: Callable[[], Session], projections: ProjectionApplier
) -> Middleware:
    """One unit of work per command, on ``session()``; a command dispatched by a handler
    joins the running one."""

    def in_a_transaction(command: Command, next_handler: NextHandler) -> Any:
        if active_unit_of_work() is not None:
            return next_handler(command)
        uow = UnitOfWork(
            session(),
            app=current_app._get_current_object(),  # type: ignore[attr-defined]
            projections=projections,
            correlation_id=current_correlation_id(),
        )
        # SQLite: the change rows the command makes must be told from others' (its
        # projections make some of them needless).
        unmark = own_changes.expect_writes(uow.session.connection())
        with uow.activate():
            try:
                result = next_handler(command)
                uow.commit(result)
            except StaleDataError as exc:
                uow.rollback()
                raise ConcurrencyConflict(
                    "the data was changed by another request; reload it and try again"
                ) from exc
            except BaseException:
                uow.rollback()
                raise
            finally:
                unmark()
        return result

    return in_a_transaction


def standard_pipeline(
    session: Callable[[], Session], projections: ProjectionApplier
) -> tuple[Middleware, ...]:
    """Correlation id, timing, client-error translation, then the transaction."""
    return (
        correlation_middleware,
        timing_middleware,
        validation_middleware,
        transaction_middleware(session, projections),
    )
