"""A time budget for a read path, enforced by the database so a late query is stopped.

Abandoning a slow query in Python would leave it running on the server (and holding its
connection); instead the database is asked to give up when the budget runs out:

- PostgreSQL: ``SET LOCAL statement_timeout`` in the transaction the query runs in (it
  lapses with the transaction, so the connection goes back to the pool unchanged; a
  statement that runs later in the same transaction gets the usual limit back first);
- SQLite: a progress handler on the DBAPI connection that returns non-zero once the
  deadline has passed, which makes SQLite interrupt the running statement;
- other databases: nothing is enforced; the caller still measures and discards a late
  answer.

Time spent outside the database (Python code in a handler) cannot be interrupted, so the
caller must also check :meth:`Deadline.expired` after the path returns.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, event

#: SQLite calls the progress handler every this many virtual-machine instructions.
SQLITE_PROGRESS_STEPS = 1000


class DeadlineExceeded(Exception):
    """The path ran past its time budget (and its query, if any, was stopped)."""

    def __init__(self, budget_ms: float, elapsed_ms: float) -> None:
        super().__init__(f"timed out after {elapsed_ms:.0f} ms (budget {budget_ms:.0f} ms)")
        self.budget_ms = budget_ms
        self.elapsed_ms = elapsed_ms


class Deadline:
    def __init__(self, budget_ms: float) -> None:
        self.budget_ms = budget_ms
        self.started = time.perf_counter()
        self.at = self.started + budget_ms / 1000

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000

    def remaining_ms(self) -> float:
        return max(0.0, (self.at - time.perf_counter()) * 1000)

    def expired(self) -> bool:
        return time.perf_counter() >= self.at

    def exceeded(self) -> DeadlineExceeded:
        return DeadlineExceeded(self.budget_ms, self.elapsed_ms())


@contextmanager
def enforced(connection: Connection, deadline: Deadline) -> Iterator[Deadline]:
    """Make the database stop queries on ``connection`` once ``deadline`` has passed.

    A database error raised after the deadline becomes :class:`DeadlineExceeded`; the
    caller must roll back the transaction after any error (PostgreSQL aborts it).
    """
    dialect = connection.dialect.name
    if dialect == "postgresql":
        context = _postgres_statement_timeout(connection, deadline)
    elif dialect == "sqlite":
        context = _sqlite_progress_handler(connection, deadline)
    else:
        context = _measured_only(deadline)
    try:
        with context:
            yield deadline
    except Exception as exc:
        if deadline.expired() and not isinstance(exc, DeadlineExceeded):
            raise deadline.exceeded() from exc
        raise


#: Set in a pooled connection's ``info`` while its transaction still carries a read
#: path's ``statement_timeout``; the next statement on it resets the limit first.
_TIMEOUT_RESET_PENDING = "cqrs.statement_timeout_reset_pending"


@contextmanager
def _postgres_statement_timeout(connection: Connection, deadline: Deadline) -> Iterator[None]:
    _install_deferred_reset(connection.engine)
    milliseconds = max(1, int(deadline.remaining_ms()))
    info = connection.connection.info
    info.pop(_TIMEOUT_RESET_PENDING, None)
    connection.exec_driver_sql(f"SET LOCAL statement_timeout = {milliseconds}")
    try:
        yield
    finally:
        # Not reset now: that round trip would be paid by every read, and usually nothing
        # else runs before the transaction ends (which drops a SET LOCAL). If something
        # does (an error handler, a host's after_request), the limit is reset before it.
        info[_TIMEOUT_RESET_PENDING] = True


def _install_deferred_reset(engine: Engine) -> None:
    if not event.contains(engine, "before_cursor_execute", _reset_timeout_first):
        event.listen(engine, "before_cursor_execute", _reset_timeout_first)
        event.listen(engine, "commit", _transaction_ended)
        event.listen(engine, "rollback", _transaction_ended)
        event.listen(engine.pool, "reset", _pool_reset)


def _reset_timeout_first(
    connection: Connection,
    cursor: Any,
    statement: str,
    _parameters: Any,
    _context: Any,
    _executemany: bool,
) -> None:
    if statement.lstrip()[:9].upper().startswith(_TRANSACTION_CONTROL):
        return  # no time limit to lift, and after a timeout the transaction takes no SET
    if connection.connection.info.pop(_TIMEOUT_RESET_PENDING, False):
        cursor.execute("SET LOCAL statement_timeout TO DEFAULT")


_TRANSACTION_CONTROL = ("ROLLBACK", "RELEASE", "SAVEPOINT", "COMMIT")


def _transaction_ended(connection: Connection) -> None:
    connection.connection.info.pop(_TIMEOUT_RESET_PENDING, None)


def _pool_reset(_dbapi_connection: Any, record: Any, _reset_state: Any) -> None:
    record.info.pop(_TIMEOUT_RESET_PENDING, None)


@contextmanager
def _sqlite_progress_handler(connection: Connection, deadline: Deadline) -> Iterator[None]:
    raw = connection.connection.dbapi_connection
    if raw is None or not hasattr(raw, "set_progress_handler"):
        yield
        return
    at = deadline.at
    perf_counter = time.perf_counter

    def interrupt_when_late() -> int:
        return 1 if perf_counter() >= at else 0

    raw.set_progress_handler(interrupt_when_late, SQLITE_PROGRESS_STEPS)
    try:
        yield
    finally:
        raw.set_progress_handler(None, SQLITE_PROGRESS_STEPS)


@contextmanager
def _measured_only(_deadline: Deadline) -> Iterator[None]:
    yield
