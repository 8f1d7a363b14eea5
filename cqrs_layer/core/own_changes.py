"""Which ``cqrs_changes`` rows the current transaction wrote.

PostgreSQL's capture triggers stamp each row with the writing transaction's id, so a
transaction finds its own with ``txid = txid_current()``. SQLite has no such id, but it has
one writer at a time: a transaction that takes the write lock right before its first write
(``BEGIN IMMEDIATE`` instead of pysqlite's deferred BEGIN) and notes the highest change id
then owns every row above it. The toolkit's commands ask for that (:func:`expect_writes`);
for any other transaction on SQLite the owner is unknown.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, event, func

from .tables import changes

_EXPECTED = "cqrs.own_changes_expected"
_AFTER = "cqrs.own_changes_after"
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


def install(engine: Engine) -> None:
    if engine.dialect.name == "sqlite" and not event.contains(
        engine, "before_cursor_execute", _lock_at_first_write
    ):
        event.listen(engine, "before_cursor_execute", _lock_at_first_write)


def expect_writes(connection: Connection) -> Callable[[], None]:
    """Have this transaction's change rows told apart (SQLite); returns what to call once
    it ended (the mark lives on the pooled connection, which outlives it)."""
    info = connection.info
    if connection.dialect.name == "sqlite":
        info[_EXPECTED] = True

    def forget() -> None:
        info.pop(_EXPECTED, None)
        info.pop(_AFTER, None)

    return forget


def own_condition(connection: Connection) -> ColumnElement[bool] | None:
    """The condition on ``cqrs_changes`` selecting this transaction's rows; None when it
    cannot be told (SQLite, unmarked)."""
    if connection.dialect.name == "postgresql":
        return changes.c.txid == func.txid_current()
    after = connection.info.get(_AFTER)
    return None if after is None else changes.c.id > after


def _lock_at_first_write(
    connection: Connection,
    _cursor: Any,
    statement: str,
    _parameters: Any,
    context: Any,
    _executemany: bool,
) -> None:
    info = connection.info
    if not info.get(_EXPECTED):
        return
    raw: Any = connection.connection.dbapi_connection
    if raw.in_transaction:  # something wrote before: its rows cannot be told apart
        info.pop(_EXPECTED, None)
        return
    writes = context is not None and (context.isinsert or context.isupdate or context.isdelete)
    if not writes and not statement.lstrip()[:7].upper().startswith(_WRITES):
        return
    info.pop(_EXPECTED, None)
    # The lock first, then the highest id: no other writer can commit rows in between.
    raw.execute("BEGIN IMMEDIATE")
    info[_AFTER] = raw.execute("SELECT coalesce(max(id), 0) FROM cqrs_changes").fetchone()[0]
