"""The write guard: notices writes to read models' source tables made outside a command.

Such a write changes the source of truth without recording events, so projections miss
it and read models drift. The guard watches both ways a write can happen: ORM flushes
(``before_flush`` on the session class) and Core DML on a connection (``before_execute``
on the engine). It logs, counts, signals and, in strict mode, refuses the write. It also
learns which endpoint writes which guarded tables, so the endpoints still bypassing
commands can be listed. Raw SQL strings (``text()``) are not inspected.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from flask import Flask, current_app, has_app_context, has_request_context, request
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import event, inspect
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import UpdateBase

from . import metrics, signals
from .errors import UnguardedWriteError
from .uow import active_unit_of_work, send_logging_failures

log = logging.getLogger(__name__)

MODES = ("off", "warn", "strict")
NO_REQUEST = "<no request>"

_allowed: ContextVar[bool] = ContextVar("cqrs_unguarded_writes_allowed", default=False)
# The session whose flush is running: its own statements were judged in before_flush.
_flushing: ContextVar[weakref.ref[Session] | None] = ContextVar("cqrs_flushing", default=None)
_listened_session_classes: set[type[Session]] = set()


@contextmanager
def allow_unguarded_writes() -> Iterator[None]:
    """For seed scripts, migrations and fixtures that legitimately write source tables."""
    token = _allowed.set(True)
    try:
        yield
    finally:
        _allowed.reset(token)


class WriteGuard:
    def __init__(self, app: Flask) -> None:
        self.app = app
        self._tables: set[str] = set()
        self._writers: dict[str, set[str]] = {}
        self._command_writers: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    @property
    def mode(self) -> str:
        # Read on every write so a config change takes effect without a restart.
        return str(self.app.config["CQRS_WRITE_GUARD"])

    def guard_tables(self, tables: Iterable[str]) -> None:
        with self._lock:
            self._tables.update(tables)

    @property
    def guarded_tables(self) -> frozenset[str]:
        return frozenset(self._tables)

    def writers(self) -> dict[str, frozenset[str]]:
        """Endpoint → guarded tables it wrote OUTSIDE a command (bypassing the events)."""
        with self._lock:
            return {name: frozenset(tables) for name, tables in self._writers.items()}

    def command_writers(self) -> dict[str, frozenset[str]]:
        """Endpoint → guarded tables it wrote through a command."""
        with self._lock:
            return {name: frozenset(tables) for name, tables in self._command_writers.items()}

    def check(self, tables: Iterable[str]) -> None:
        """Judge a write about to touch ``tables``; raises in strict mode if unguarded."""
        mode = self.mode
        hit = sorted(set(tables) & self._tables)
        if mode == "off" or not hit or _allowed.get():
            return
        endpoint = (request.endpoint or NO_REQUEST) if has_request_context() else NO_REQUEST
        inside_command = active_unit_of_work() is not None
        with self._lock:
            learned = self._command_writers if inside_command else self._writers
            learned.setdefault(endpoint, set()).update(hit)
        if inside_command:
            return
        strict = mode == "strict"
        log.warning(
            "write to guarded table(s) %s outside a command (endpoint %s)%s",
            ", ".join(hit),
            endpoint,
            "; refused (strict)" if strict else "",
        )
        for table in hit:
            metrics.unguarded_writes_total.labels(table=table).inc()
        send_logging_failures(
            signals.unguarded_write, self.app, tables=hit, strict=strict, endpoint=endpoint
        )
        if strict:
            raise UnguardedWriteError(
                f"write to {', '.join(hit)} outside a command (endpoint {endpoint}); "
                "dispatch a command or wrap the code in allow_unguarded_writes()"
            )


def install(app: Flask, db: SQLAlchemy, guard: WriteGuard) -> None:
    session_class = db.session.session_factory.class_
    if session_class not in _listened_session_classes:
        # Session events are per class, shared by every app: one listener that finds the
        # current app's guard, instead of one per app piling up.
        event.listen(session_class, "before_flush", _before_flush)
        _listened_session_classes.add(session_class)
    with app.app_context():
        engines = list(db.engines.values())
    for engine in engines:
        event.listen(engine, "before_execute", _core_listener(guard))


def _current_guard() -> WriteGuard | None:
    if not has_app_context():
        return None
    state = current_app.extensions.get("cqrs")
    return state.guard if state is not None else None


def _before_flush(session: Session, _flush_context: Any, _instances: Any) -> None:
    _flushing.set(weakref.ref(session))
    guard = _current_guard()
    if guard is None:
        return
    tables: set[str] = set()
    for obj in (*session.new, *session.deleted):
        tables.update(_table_names(obj))
    for obj in session.dirty:
        if session.is_modified(obj, include_collections=False):
            tables.update(_table_names(obj))
    guard.check(tables)


def _table_names(obj: object) -> set[str]:
    return {table.name for table in inspect(obj).mapper.tables}


def _core_listener(guard: WriteGuard) -> Any:
    def before_execute(
        _conn: Connection, clauseelement: Any, _multiparams: Any, _params: Any, _options: Any
    ) -> None:
        if not isinstance(clauseelement, UpdateBase):
            return
        flushing = _flushing.get()
        session = flushing() if flushing is not None else None
        if session is not None and session._flushing:
            return  # the ORM flush was judged as a whole in before_flush
        name = getattr(clauseelement.table, "name", None)
        if name is not None:
            guard.check([name])

    return before_execute
