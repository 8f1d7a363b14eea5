"""Another connection doing what an operator or a migration might: hold a lock, rename a table.

Both backends: PostgreSQL takes table locks (``LOCK TABLE ... IN ACCESS EXCLUSIVE MODE``);
SQLite has one lock for the whole database, which a write transaction holds
(``BEGIN IMMEDIATE`` plus a write), so that is its nearest equivalent.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

#: How long the lock holder itself waits for its lock (in-flight requests hold theirs).
ACQUIRE_TIMEOUT_S = 30


@dataclass
class Window:
    """When something was in effect, in time.monotonic() seconds."""

    start: float = 0.0
    end: float = float("inf")

    def contains(self, started: float, finished: float) -> bool:
        return started >= self.start and finished <= self.end

    def overlaps(self, started: float, finished: float) -> bool:
        return started < self.end and finished > self.start


def is_postgres(url: str) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


def execute_now(url: str, statement: str) -> None:
    """Run one statement in its own transaction, committed at once."""
    if is_postgres(url):
        engine = create_engine(url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(text(f"SET lock_timeout = '{ACQUIRE_TIMEOUT_S}s'"))
                conn.execute(text(statement))
        finally:
            engine.dispose()
        return
    connection = sqlite3.connect(
        str(make_url(url).database), timeout=ACQUIRE_TIMEOUT_S, isolation_level=None
    )
    try:
        connection.execute(statement)
    finally:
        connection.close()


@contextmanager
def renamed_away(url: str, table: str) -> Iterator[Window]:
    """``table`` is gone (renamed) for the block; it comes back however the block ends."""
    away = f"{table}_away"
    window = Window()
    execute_now(url, f"ALTER TABLE {table} RENAME TO {away}")
    window.start = time.monotonic()
    try:
        yield window
    finally:
        window.end = time.monotonic()
        execute_now(url, f"ALTER TABLE {away} RENAME TO {table}")


@contextmanager
def table_locked(url: str, table: str, seconds: float) -> Iterator[Window]:
    """Hold an exclusive lock on ``table`` (PostgreSQL) or the database's write lock with a
    write to ``table`` (SQLite) from another connection, for ``seconds`` from when it is
    acquired; the block runs meanwhile and the lock is released when both are done."""
    window = Window()
    acquired = threading.Event()
    failure: list[BaseException] = []

    def hold() -> None:
        try:
            if is_postgres(url):
                _hold_postgres(url, table, seconds, window, acquired)
            else:
                _hold_sqlite(url, table, seconds, window, acquired)
        except BaseException as error:  # reported to the waiting thread
            failure.append(error)
            acquired.set()

    holder = threading.Thread(target=hold, name=f"lock-{table}", daemon=True)
    holder.start()
    acquired.wait(ACQUIRE_TIMEOUT_S + 5)
    if failure:
        raise RuntimeError(f"could not lock {table}: {failure[0]}")
    try:
        yield window
    finally:
        holder.join(seconds + ACQUIRE_TIMEOUT_S)


def _hold_postgres(
    url: str, table: str, seconds: float, window: Window, acquired: threading.Event
) -> None:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text(f"SET lock_timeout = '{ACQUIRE_TIMEOUT_S}s'"))
            conn.execute(text(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
            window.start = time.monotonic()
            acquired.set()
            time.sleep(seconds)
            window.end = time.monotonic()
            conn.rollback()
    finally:
        engine.dispose()


def _hold_sqlite(
    url: str, table: str, seconds: float, window: Window, acquired: threading.Event
) -> None:
    connection = sqlite3.connect(
        str(make_url(url).database), timeout=ACQUIRE_TIMEOUT_S, isolation_level=None
    )
    try:
        connection.execute("BEGIN IMMEDIATE")
        # A write that changes nothing: the transaction now holds the write lock.
        connection.execute(f"UPDATE {table} SET rowid = rowid WHERE 0")
        window.start = time.monotonic()
        acquired.set()
        time.sleep(seconds)
        window.end = time.monotonic()
        connection.execute("ROLLBACK")
    finally:
        connection.close()
