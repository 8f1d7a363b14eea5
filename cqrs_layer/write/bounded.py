"""A bounded wait for the writes of wrapped write endpoints (``CQRS_WRITE_TIMEOUT_MS``).

Without a bound, a table someone else holds (a long ``ALTER TABLE``, an operator's ``LOCK
TABLE``, on SQLite any other writer) makes every write wait until it is let go, and every
server worker with it. While a wrapped write endpoint runs, on either path, each
transaction the app's session begins is bounded (:func:`cqrs_layer.core.sql.bound_transaction`:
``SET LOCAL lock_timeout`` and ``statement_timeout`` on PostgreSQL, the busy timeout on
SQLite, both lapsing with the transaction). A write that reaches the bound is rolled back
whole, counted, logged and refused as :class:`~cqrs_layer.core.errors.WriteTimedOut` (a 503
with ``Retry-After``), and the worker is free for the next request.

The bound is per wait (per statement on PostgreSQL), not for the request as a whole: a
write that waits for several locks in turn may take a few times the bound.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import Connection, event
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, SessionTransaction, scoped_session

from ..core import logs, metrics
from ..core.errors import WriteTimedOut
from ..core.sql import bound_transaction, gave_up_waiting

_bound_ms: ContextVar[float | None] = ContextVar("cqrs_write_bound_ms", default=None)
_listened: set[type[Session]] = set()


def install(session_class: type[Session]) -> None:
    """Bound the transactions ``session_class`` begins inside :func:`bounded_writes`."""
    if session_class not in _listened:
        # One listener per class (shared by every app), reading this context's bound.
        event.listen(session_class, "after_begin", _bound_transaction)
        _listened.add(session_class)


@contextmanager
def bounded_writes(
    session: scoped_session[Any], timeout_ms: float, endpoint: str
) -> Iterator[None]:
    """Run a write endpoint with its transactions bounded; a wait past the bound becomes
    :class:`WriteTimedOut`, after the session is rolled back (nothing of the write is kept)."""
    token = _bound_ms.set(timeout_ms)
    try:
        yield
    except Exception as error:
        if not gave_up_waiting(error):
            raise
        _roll_back(session)
        metrics.write_timeouts_total.labels(endpoint=endpoint).inc()
        logs.writes.warning(
            "%s: gave up waiting after %.0f ms (%s); rolled back, answered 503",
            endpoint,
            timeout_ms,
            str(error).splitlines()[0],
        )
        raise WriteTimedOut(
            f"the write waited {timeout_ms:.0f} ms for data another transaction holds and "
            "gave up; nothing was written: retry later",
            retry_after=max(1, math.ceil(timeout_ms / 1000)),
        ) from error
    finally:
        _bound_ms.reset(token)


def _bound_transaction(
    _session: Session, _transaction: SessionTransaction, connection: Connection
) -> None:
    timeout_ms = _bound_ms.get()
    if timeout_ms is not None:
        bound_transaction(connection, timeout_ms)


def _roll_back(session: scoped_session[Any]) -> None:
    try:
        session.rollback()
    except SQLAlchemyError:
        logs.writes.exception("rollback after a write timeout failed")
