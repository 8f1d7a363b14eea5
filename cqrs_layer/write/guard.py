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
from sqlalchemy import Engine, event, inspect
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import UpdateBase

from ..core import metrics, signals
from ..core.errors import UnguardedWriteError
from ..core.settings import GuardMode
from .uow import active_unit_of_work, send_logging_failures

log = logging.getLogger(__name__)

NO_REQUEST = "<no request>"

_allowed: ContextVar[bool] = ContextVar("cqrs_unguarded_writes_allowed", default=False)
# The session whose flush is running: its own statements were judged in before_flush.
_flushing: ContextVar[weakref.ref[Session] | None] = ContextVar("cqrs_flushing", default=None)
_listened_session_classes: set[type[Session]] = set()
# Session events are per session class, shared by every app: the listener finds the
# current app's guard here.
_guards: weakref.WeakKeyDictionary[Flask, WriteGuard] = weakref.WeakKeyDictionary()


@contextmanager
def allow_unguarded_writes() -> Iterator[None]:
    """For seed scripts, migrations and fixtures that legitimately write source tables."""
    token = _allowed.set(True)
    try:
        yield
    finally:
        _allowed.reset(token)


class WriteGuard:
    def __init__(self, app: Flask, mode: GuardMode) -> None:
        self.app = app
        self.mode = mode
        self._tables: set[str] = set()
        self._writers: dict[str, set[str]] = {}
        self._command_writers: dict[str, set[str]] = {}
        self._lock = threading.Lock()

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

    def learned(self) -> dict[str, frozenset[str]]:
        """Endpoint -> guarded tables it wrote, inside or outside commands."""
        with self._lock:
            merged: dict[str, set[str]] = {}
            for source in (self._writers, self._command_writers):
                for name, tables in source.items():
                    merged.setdefault(name, set()).update(tables)
        return {name: frozenset(tables) for name, tables in merged.items()}

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


def install(guard: WriteGuard, session_class: type[Session], engines: list[Engine]) -> None:
    """Watch the ORM flushes of ``session_class`` and the Core writes on ``engines``."""
    _guards[guard.app] = guard
    if session_class not in _listened_session_classes:
        # One listener per class that finds the current app's guard, instead of one per
        # app piling up.
        event.listen(session_class, "before_flush", _before_flush)
        _listened_session_classes.add(session_class)
    for engine in engines:
        event.listen(engine, "before_execute", _core_listener(guard))


def _current_guard() -> WriteGuard | None:
    if not has_app_context():
        return None
    return _guards.get(current_app._get_current_object())  # type: ignore[attr-defined]


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
