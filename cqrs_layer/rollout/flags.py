"""The flag store: each wrapped endpoint's stage, in the database, cached per process.

Storage and cache only: what a change is allowed to do (validation, the promotion gate,
logging) is :mod:`cqrs_layer.rollout.changes`' business.

Every process reads the whole (small) ``cqrs_flags`` table with one query at most every
``CQRS_FLAG_REFRESH_SECONDS`` (default 0.5 s) and evaluates flags from that snapshot, so a
request pays a few dict lookups, not a query, and a committed change is live everywhere
within the refresh interval plus one query. The snapshot is keyed by ``os.getpid()``: a
process forked after start-up (gunicorn ``--preload``) never serves its parent's snapshot,
and first drops the database connections it inherited. No background thread is needed:
the first request after the interval refreshes.

Endpoints without a row follow the settings (``CQRS_ENDPOINT_STAGES``, else
``CQRS_DEFAULT_READ_STAGE`` / ``CQRS_DEFAULT_WRITE_STAGE``), so a row is only ever
written by an audited change.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from ..core import logs
from ..core.errors import ConcurrencyConflict
from ..core.registry import EndpointKind, Registry
from ..core.settings import Settings
from ..core.tables import flag_audit, flags
from .stages import LEGACY, STAGES

#: Where a flag's values come from.
DATABASE = "database"  # a recorded change
SETTINGS = "settings"  # nothing recorded: the configured default applies

#: (stage, percent, sample_rate) as a request is served.
Effective = tuple[str, float, float]


@dataclass(frozen=True, slots=True)
class FlagState:
    endpoint: str
    kind: EndpointKind
    stage: str
    percent: float
    sample_rate: float
    source: str
    updated_at: datetime | None = None
    updated_by: str | None = None
    version: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "kind": self.kind,
            "stage": self.stage,
            "percent": self.percent,
            "sample_rate": self.sample_rate,
            "source": self.source,
            "updated_at": iso(self.updated_at),
            "updated_by": self.updated_by,
            "version": self.version,
        }


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    endpoint: str
    at: datetime
    actor: str
    from_stage: str | None
    to_stage: str
    from_percent: float | None
    to_percent: float
    reason: str
    forced: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "endpoint": self.endpoint,
            "at": iso(self.at),
            "actor": self.actor,
            "from_stage": self.from_stage,
            "to_stage": self.to_stage,
            "from_percent": self.from_percent,
            "to_percent": self.to_percent,
            "reason": self.reason,
            "forced": self.forced,
        }


@dataclass(frozen=True, slots=True)
class _Snapshot:
    pid: int
    expires: float  # time.monotonic()
    rows: dict[str, Effective]


class FlagStore:
    def __init__(self, engine: Engine, registry: Registry, settings: Settings) -> None:
        self._engine = engine
        self._registry = registry
        self._settings = settings
        self._snapshot = _Snapshot(pid=-1, expires=0.0, rows={})
        self._lock = threading.Lock()
        self._lock_pid = os.getpid()
        self._warned: set[tuple[str, str]] = set()
        self._failing = False

    # ------------------------------------------------------------ per request (cached)

    def effective(self, endpoint: str, kind: EndpointKind) -> Effective:
        """(stage, percent, sample_rate) as this process serves them now."""
        snapshot = self._snapshot
        if snapshot.pid != os.getpid() or time.monotonic() >= snapshot.expires:
            snapshot = self._refresh()
        row = snapshot.rows.get(endpoint)
        if row is None:
            return self._configured(endpoint, kind)
        if row[0] not in STAGES[kind]:
            self._warn_once(endpoint, row[0], kind)
            return LEGACY, 100.0, 0.0
        return row

    def invalidate(self) -> None:
        """Make the next evaluation in this process re-read the flags."""
        old = self._snapshot
        self._snapshot = _Snapshot(old.pid, 0.0, old.rows)

    def _configured(self, endpoint: str, kind: EndpointKind) -> Effective:
        settings = self._settings
        stage = settings.endpoint_stages.get(endpoint)
        if stage is None:
            stage = settings.default_write_stage if kind == "write" else settings.default_read_stage
        if stage not in STAGES[kind]:  # refused when wrapped; here only if unwrapped
            self._warn_once(endpoint, stage, kind)
            return LEGACY, 100.0, 0.0
        return stage, 100.0, settings.default_sample_rate

    def _warn_once(self, endpoint: str, stage: str, kind: str) -> None:
        if (endpoint, stage) not in self._warned:
            self._warned.add((endpoint, stage))
            logs.flags.error(
                "unknown stage %r for %s endpoint %s; serving legacy", stage, kind, endpoint
            )

    def _refresh(self) -> _Snapshot:
        pid = os.getpid()
        if self._lock_pid != pid:
            # A lock held by another thread at fork time stays locked in the child forever.
            self._lock, self._lock_pid = threading.Lock(), pid
        interval = self._settings.flag_refresh_seconds
        if self._snapshot.pid == pid and not self._lock.acquire(blocking=False):
            # Another thread is refreshing. A snapshot that expired moments ago is still
            # within the promise (live everywhere within a second): serve it. One left
            # expired through an idle spell may be minutes old: wait for the fresh one.
            if time.monotonic() < self._snapshot.expires + interval:
                return self._snapshot
            self._lock.acquire()
        elif self._snapshot.pid != pid:
            self._lock.acquire()  # nothing of ours to serve yet: wait for the refresh
        try:
            old = self._snapshot
            if old.pid == pid and time.monotonic() < old.expires:
                return old  # refreshed by the thread we waited for
            if old.pid not in (pid, -1):
                # Forked after the parent used the pool: its pooled connections are the
                # parent's sockets, which the child must neither use nor close.
                self._engine.dispose(close=False)
            try:
                with self._engine.connect() as connection:
                    rows = _load_rows(connection)
                if self._failing:
                    logs.flags.warning("the flags table is readable again")
                self._failing = False
            except SQLAlchemyError:
                # Keep serving what we last knew (or the settings) and retry next interval.
                if not self._failing:
                    logs.flags.exception("cannot read the flags table; using the last known flags")
                self._failing = True
                rows = old.rows
            expires = time.monotonic() + interval
            snapshot = _Snapshot(pid, expires, rows)
            self._snapshot = snapshot
            return snapshot
        finally:
            self._lock.release()

    # ------------------------------------------------------------ stored state (fresh)

    def get(self, endpoint: str) -> FlagState:
        """The endpoint's flag as stored now (read from the database, not the cache)."""
        with self._engine.connect() as connection:
            return self.get_in(connection, endpoint)

    def get_in(self, connection: Connection, endpoint: str) -> FlagState:
        kind = self._registry.endpoint(endpoint).kind
        row = connection.execute(select(flags).where(flags.c.endpoint == endpoint)).first()
        return _state_from_row(row, kind) if row is not None else self.settings_state(endpoint)

    def all(self) -> list[FlagState]:
        """Every wrapped endpoint's flag, by endpoint name."""
        with self._engine.connect() as connection:
            stored = {row.endpoint: row for row in connection.execute(select(flags))}
        return [
            _state_from_row(stored[name], endpoint.kind)
            if name in stored
            else self.settings_state(name)
            for name, endpoint in sorted(self._registry.endpoints.items())
        ]

    def history(self, endpoint: str | None = None, *, limit: int = 50) -> list[AuditEntry]:
        """Audited changes, newest first."""
        if endpoint is not None:
            self._registry.endpoint(endpoint)  # unknown: a clear error, not an empty list
        query = select(flag_audit).order_by(flag_audit.c.id.desc()).limit(limit)
        if endpoint is not None:
            query = query.where(flag_audit.c.endpoint == endpoint)
        with self._engine.connect() as connection:
            return [_audit_entry(row) for row in connection.execute(query)]

    def record(
        self,
        before: FlagState,
        stage: str,
        percent: float,
        sample_rate: float,
        *,
        actor: str,
        reason: str,
        forced: bool,
    ) -> FlagState:
        """Store a change from ``before`` and its audit row, in one transaction.

        Compare-and-set on the version read in ``before``: if anyone changed the flag since,
        :class:`ConcurrencyConflict` and nothing is written (what was judged is stale).
        """
        now = datetime.now(UTC).replace(tzinfo=None)
        values = {
            "kind": before.kind,
            "stage": stage,
            "percent": percent,
            "sample_rate": sample_rate,
            "updated_at": now,
            "updated_by": actor,
            "version": before.version + 1,
        }
        try:
            with self._engine.begin() as connection:
                if before.source == DATABASE:
                    changed = connection.execute(
                        update(flags)
                        .where(flags.c.endpoint == before.endpoint)
                        .where(flags.c.version == before.version)
                        .values(values)
                    )
                    if changed.rowcount != 1:
                        raise _concurrent(before.endpoint)
                else:
                    connection.execute(insert(flags).values(endpoint=before.endpoint, **values))
                connection.execute(
                    insert(flag_audit).values(
                        endpoint=before.endpoint,
                        at=now,
                        actor=actor,
                        from_stage=before.stage,
                        to_stage=stage,
                        from_percent=before.percent,
                        to_percent=percent,
                        reason=reason,
                        forced=forced,
                    )
                )
        except IntegrityError:  # someone else inserted the first row meanwhile
            raise _concurrent(before.endpoint) from None
        self.invalidate()
        return FlagState(
            before.endpoint, before.kind, stage, percent, sample_rate, DATABASE, now, actor,
            before.version + 1,
        )  # fmt: skip

    def settings_state(self, endpoint: str) -> FlagState:
        """The endpoint's flag as the settings make it (no row recorded, or no table)."""
        kind = self._registry.endpoint(endpoint).kind
        stage, percent, sample_rate = self._configured(endpoint, kind)
        return FlagState(endpoint, kind, stage, percent, sample_rate, SETTINGS)


def _load_rows(connection: Connection) -> dict[str, Effective]:
    """The one query a cache refresh costs."""
    query = select(flags.c.endpoint, flags.c.stage, flags.c.percent, flags.c.sample_rate)
    return {
        endpoint: (stage, float(percent), float(sample_rate))
        for endpoint, stage, percent, sample_rate in connection.execute(query)
    }


def _state_from_row(row: Any, kind: EndpointKind) -> FlagState:
    return FlagState(
        endpoint=row.endpoint,
        kind=kind,
        stage=row.stage,
        percent=float(row.percent),
        sample_rate=float(row.sample_rate),
        source=DATABASE,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
        version=int(row.version),
    )


def _audit_entry(row: Any) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        endpoint=row.endpoint,
        at=row.at,
        actor=row.actor,
        from_stage=row.from_stage,
        to_stage=row.to_stage,
        from_percent=row.from_percent,
        to_percent=row.to_percent,
        reason=row.reason,
        forced=bool(row.forced),
    )


def _concurrent(endpoint: str) -> ConcurrencyConflict:
    return ConcurrencyConflict(
        f"the flag of {endpoint} changed while this change was being made; re-read and retry",
        field="endpoint",
    )


def iso(moment: datetime | None) -> str | None:
    """Stored naive UTC as ISO 8601 with a ``Z``."""
    return None if moment is None else moment.isoformat(timespec="milliseconds") + "Z"
