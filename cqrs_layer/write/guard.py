"""The write guard: notices writes to a read model's sources that nothing keeps it current
after, the writers of read models kept only by hand-written projections.

A read model with change capture installed is kept exact whatever writes its tables, so
writes to them are no concern of the guard. One kept only by projections hears of a
command's writes through events, and of nothing else: a write outside a command changes
its source without an event, and it drifts. The guard watches the columns such read
models read, both ways a write can happen: ORM flushes (``before_flush`` on the session
class: rows added or deleted, columns changed, and the many-to-many ``secondary`` rows the
flush writes) and Core DML on a connection (``before_execute`` on the engine). It logs,
counts, signals and, in strict mode, refuses the write. A write touching only columns no
such read model reads (``user.last_seen``) is not a writer. Raw SQL strings (``text()``)
are not inspected.

It also learns which endpoint writes which source tables of any read model (captured or
not: declarations are checked against it), and hands each new finding to ``record`` (the
extension keeps them in the database, so every process's gate agrees).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from flask import (
    Flask,
    Response,
    after_this_request,
    current_app,
    has_app_context,
    has_request_context,
    request,
)
from sqlalchemy import Engine, Table, event, inspect
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Update, UpdateBase

from ..core import logs, metrics, signals
from ..core.errors import UnguardedWriteError
from ..core.settings import GuardMode
from .uow import active_unit_of_work, send_logging_failures

NO_REQUEST = "<no request>"

#: Table -> the columns read by read models the guard watches for.
Watched = Mapping[str, frozenset[str]]
#: Table -> the columns a write changes (None: whole rows, an INSERT or DELETE).
Written = Mapping[str, frozenset[str] | None]
#: Called with (endpoint, table, inside a command) the first time this process sees it.
RecordWriter = Callable[[str, str, bool], object]

_allowed: ContextVar[bool] = ContextVar("cqrs_unguarded_writes_allowed", default=False)
# The tables the running flush was judged for in before_flush (its own statements for
# them are not judged again; the many-to-many rows it writes are).
_judged_in_flush: ContextVar[tuple[weakref.ref[Session], frozenset[str]] | None] = ContextVar(
    "cqrs_judged_in_flush", default=None
)
_listened_session_classes: set[type[Session]] = set()
_FINDINGS_KEY = "cqrs.guard_findings"
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
    def __init__(
        self,
        app: Flask,
        mode: GuardMode,
        watched: Callable[[], Watched],
        sources: Callable[[], Watched],
        record: RecordWriter | None = None,
    ) -> None:
        """``watched``: the columns of read models kept by projections alone, whose
        writers outside commands are warned about; ``sources``: those of every read
        model, whose writers are learned."""
        self.app = app
        self.mode = mode
        self._watched = watched
        self._sources = sources
        self._record = record
        self._writers: dict[str, set[str]] = {}
        self._command_writers: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    def writers(self) -> dict[str, frozenset[str]]:
        """Endpoint -> watched tables it wrote OUTSIDE a command (in this process)."""
        with self._lock:
            return {name: frozenset(tables) for name, tables in self._writers.items()}

    def command_writers(self) -> dict[str, frozenset[str]]:
        """Endpoint -> watched tables it wrote through a command (in this process)."""
        with self._lock:
            return {name: frozenset(tables) for name, tables in self._command_writers.items()}

    def learned(self) -> dict[str, frozenset[str]]:
        """Endpoint -> watched tables it wrote, inside or outside commands."""
        with self._lock:
            merged: dict[str, set[str]] = {}
            for source in (self._writers, self._command_writers):
                for name, tables in source.items():
                    merged.setdefault(name, set()).update(tables)
        return {name: frozenset(tables) for name, tables in merged.items()}

    def check(self, written: Written) -> None:
        """Judge a write about to change ``written``; raises in strict mode if unguarded."""
        mode = self.mode
        if mode == "off" or _allowed.get() or not written:
            return
        touched = _touching(written, self._sources())
        if not touched:
            return
        endpoint = (request.endpoint or NO_REQUEST) if has_request_context() else NO_REQUEST
        inside_command = active_unit_of_work() is not None
        self._learn(endpoint, touched, inside_command)
        hit = _touching(written, self._watched())
        if inside_command or not hit:
            return
        strict = mode == "strict"
        logs.guard.warning(
            "write to %s outside a command (endpoint %s): read models kept only by "
            "projections will not hear of it%s",
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
                "dispatch a command, install change capture for the read models reading "
                "it, or wrap the code in allow_unguarded_writes()"
            )

    def _learn(self, endpoint: str, tables: Iterable[str], inside_command: bool) -> None:
        fresh = []
        with self._lock:
            learned = self._command_writers if inside_command else self._writers
            known = learned.setdefault(endpoint, set())
            fresh = [table for table in tables if table not in known]
            known.update(fresh)
        if fresh and self._record is not None and endpoint != NO_REQUEST:
            self._record_after_response([(endpoint, table, inside_command) for table in fresh])

    def _record_after_response(self, findings: list[tuple[str, str, bool]]) -> None:
        """Hand findings over once the response is sent: recording them now, on another
        connection, would wait for the very transaction that is writing (SQLite)."""
        queued: list[tuple[str, str, bool]] | None = request.environ.get(_FINDINGS_KEY)
        if queued is not None:
            queued.extend(findings)
            return
        queued = request.environ[_FINDINGS_KEY] = list(findings)
        record = self._record
        assert record is not None

        @after_this_request
        def record_on_close(response: Response) -> Response:
            response.call_on_close(lambda: [record(*finding) for finding in queued])
            return response


def _touching(written: Written, read: Watched) -> list[str]:
    """The written tables where a row, or a column ``read`` names, changes."""
    return sorted(
        table
        for table, columns in written.items()
        if table in read and (columns is None or columns & read[table])
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
    guard = _current_guard()
    written: dict[str, frozenset[str] | None] = {}
    for obj in (*session.new, *session.deleted):
        for table in inspect(obj).mapper.tables:
            written[table.name] = None
    for obj in session.dirty:
        for table, columns in _changed_columns(obj).items():
            if written.get(table, frozenset()) is not None:
                written[table] = frozenset(written.get(table) or ()) | columns
    _judged_in_flush.set((weakref.ref(session), frozenset(written)))
    if guard is not None:
        guard.check(written)


def _changed_columns(obj: object) -> dict[str, frozenset[str]]:
    """The columns of each of ``obj``'s tables whose attributes changed."""
    state = inspect(obj)
    changed: dict[str, set[str]] = {}
    for attribute in state.mapper.column_attrs:
        if state.attrs[attribute.key].history.has_changes():
            for column in attribute.columns:
                table = getattr(column, "table", None)
                if isinstance(table, Table):
                    changed.setdefault(table.name, set()).add(column.name)
    return {table: frozenset(columns) for table, columns in changed.items()}


def _core_listener(guard: WriteGuard) -> Any:
    def before_execute(
        _conn: Connection, clauseelement: Any, multiparams: Any, params: Any, _options: Any
    ) -> None:
        if not isinstance(clauseelement, UpdateBase):
            return
        name = getattr(clauseelement.table, "name", None)
        if name is None:
            return
        judged = _judged_in_flush.get()
        session = judged[0]() if judged is not None else None
        if session is not None and session._flushing and name in judged[1]:  # type: ignore[index]
            return  # judged as a whole in before_flush (but not its many-to-many rows)
        guard.check({name: _updated_columns(clauseelement, multiparams, params)})

    return before_execute


def _updated_columns(statement: Any, multiparams: Any, params: Any) -> frozenset[str] | None:
    """The columns an UPDATE sets (None for an INSERT or DELETE: whole rows)."""
    if not isinstance(statement, Update):
        return None
    names = {getattr(key, "name", key) for key in (statement._values or {})}
    for given in (*(multiparams or ()), params or {}):
        if isinstance(given, Mapping):
            names.update(str(key) for key in given)
    return frozenset(str(name) for name in names) if names else None
