"""The flag store: each wrapped endpoint's stage, in the database, cached per process.

Every process reads the whole (small) ``cqrs_flags`` table with one query at most every
``CQRS_FLAG_REFRESH_SECONDS`` (default 0.5 s) and evaluates flags from that snapshot, so a
request pays a few dict lookups, not a query, and a committed change is live everywhere
within the refresh interval plus one query. The snapshot is keyed by ``os.getpid()``: a
process forked after start-up (gunicorn ``--preload``) never serves its parent's snapshot,
and first drops the database connections it inherited. No background thread is needed:
the first request after the interval refreshes.

Endpoints without a row follow the config (``CQRS_ENDPOINT_MODES``, else
``CQRS_DEFAULT_READ_MODE`` / ``CQRS_DEFAULT_WRITE_MODE``), read per evaluation, so a row
is only written by an audited change.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from flask import Flask, Request
from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from . import gate, rollout
from .errors import ConcurrencyConflict, NotFound, ValidationFailed
from .rollout import LEGACY, Route
from .tables import flag_audit, flags

if TYPE_CHECKING:
    from .ext import CQRSState

log = logging.getLogger(__name__)

DATABASE = "database"
CONFIG = "config"
_LEGACY_ROUTE = Route(LEGACY, False, False, False)


@dataclass(frozen=True, slots=True)
class FlagState:
    endpoint: str
    kind: str
    stage: str
    percent: float
    sample_rate: float
    #: ``database`` when a change was recorded, else ``config`` (the configured default).
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
            "updated_at": _iso(self.updated_at),
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
            "at": _iso(self.at),
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
    rows: dict[str, tuple[str, float, float]]  # endpoint -> (stage, percent, sample_rate)


class UnknownEndpoint(NotFound):
    code = "unknown_endpoint"


class FlagStore:
    """Implements the routing ``ModeSource`` protocol (``mode_for``) and ``route``."""

    def __init__(self, app: Flask, state: CQRSState) -> None:
        self.app = app
        self.state = state
        self._snapshot = _Snapshot(pid=-1, expires=0.0, rows={})
        self._lock = threading.Lock()
        self._lock_pid = os.getpid()
        self._warned: set[tuple[str, str]] = set()
        self._read_subject: Callable[[Request], str] | None = None
        self._failing = False
        self._cached_engine: Engine | None = None

    # ------------------------------------------------------------ per request

    def route(self, endpoint: str, kind: str, request: Request) -> Route:
        """Which path serves this request. Never raises: on any trouble, legacy."""
        try:
            stage, percent, sample_rate = self.effective(endpoint, kind)
            return rollout.decide(
                endpoint,
                kind,
                stage,
                percent,
                sample_rate,
                lambda: self._subject(request),
            )
        except Exception:
            log.exception("flag evaluation failed for %s; serving legacy", endpoint)
            return _LEGACY_ROUTE

    def mode_for(self, endpoint: str, kind: str) -> str:
        """The endpoint's stage now (the ``ModeSource`` protocol)."""
        return self.effective(endpoint, kind)[0]

    def effective(self, endpoint: str, kind: str) -> tuple[str, float, float]:
        """(stage, percent, sample_rate) as this process serves them now (cached)."""
        snapshot = self._snapshot
        if snapshot.pid != os.getpid() or time.monotonic() >= snapshot.expires:
            snapshot = self._refresh()
        row = snapshot.rows.get(endpoint)
        if row is None:
            return self._configured(endpoint, kind)
        if row[0] not in rollout.STAGES[kind]:
            self._warn_once(endpoint, row[0], kind)
            return LEGACY, 100.0, 0.0
        return row

    def _configured(self, endpoint: str, kind: str) -> tuple[str, float, float]:
        config = self.app.config
        stage = config["CQRS_ENDPOINT_MODES"].get(endpoint)
        if stage is None:
            key = "CQRS_DEFAULT_WRITE_MODE" if kind == "write" else "CQRS_DEFAULT_READ_MODE"
            stage = config[key]
        if kind == "read":
            stage = rollout.ALIASES.get(stage, stage)
        if stage not in rollout.STAGES[kind]:
            self._warn_once(endpoint, str(stage), kind)
            return LEGACY, 100.0, 0.0
        return stage, 100.0, float(config["CQRS_DEFAULT_SAMPLE_RATE"])

    def _subject(self, request: Request) -> str:
        if self._read_subject is None:
            self._read_subject = rollout.subject_key_reader(self.app.config)
        # Unwrap Flask's ``request`` proxy once instead of paying for it per attribute.
        unwrap = getattr(request, "_get_current_object", None)
        return self._read_subject(unwrap() if unwrap is not None else request)

    def _warn_once(self, endpoint: str, stage: str, kind: str) -> None:
        if (endpoint, stage) not in self._warned:
            self._warned.add((endpoint, stage))
            log.error("unknown stage %r for %s endpoint %s; serving legacy", stage, kind, endpoint)

    # ------------------------------------------------------------ the cache

    def invalidate(self) -> None:
        """Make the next evaluation in this process re-read the flags."""
        old = self._snapshot
        self._snapshot = _Snapshot(old.pid, 0.0, old.rows)

    def _refresh(self) -> _Snapshot:
        pid = os.getpid()
        if self._lock_pid != pid:
            # A lock held by another thread at fork time stays locked in the child forever.
            self._lock, self._lock_pid = threading.Lock(), pid
        if self._snapshot.pid == pid and not self._lock.acquire(blocking=False):
            return self._snapshot  # another thread is refreshing: its result is moments away
        if self._snapshot.pid != pid:
            self._lock.acquire()  # nothing of ours to serve yet: wait for the refresh
        try:
            old = self._snapshot
            if old.pid == pid and time.monotonic() < old.expires:
                return old  # refreshed by the thread we waited for
            if old.pid not in (pid, -1):
                # Forked after the parent used the pool: its pooled connections are the
                # parent's sockets, which the child must neither use nor close.
                self._engine().dispose(close=False)
            interval = float(self.app.config["CQRS_FLAG_REFRESH_SECONDS"])
            try:
                with self._engine().connect() as connection:
                    rows = load_rows(connection)
                if self._failing:
                    log.warning("the flags table is readable again")
                self._failing = False
            except SQLAlchemyError:
                # Keep serving what we last knew (or the config) and retry next interval.
                if not self._failing:
                    log.exception("cannot read the flags table; using the last known flags")
                self._failing = True
                rows = old.rows
            snapshot = _Snapshot(pid, time.monotonic() + interval, rows)
            self._snapshot = snapshot
            return snapshot
        finally:
            self._lock.release()

    def _engine(self) -> Engine:
        if self._cached_engine is None:
            with self.app.app_context():
                self._cached_engine = self.state.db.engine
        return self._cached_engine

    # ------------------------------------------------------------ reading and changing

    def get(self, endpoint: str) -> FlagState:
        """The endpoint's flag as stored now (read from the database, not the cache)."""
        kind = self._kind(endpoint)
        with self._engine().connect() as connection:
            return self._current(connection, endpoint, kind)

    def all(self) -> list[FlagState]:
        with self._engine().connect() as connection:
            stored = {row.endpoint: row for row in connection.execute(select(flags))}
        return [
            _state_from_row(stored[name], wrapped.kind)
            if name in stored
            else self._config_state(name, wrapped.kind)
            for name, wrapped in sorted(self.state.endpoints.items())
        ]

    def history(self, endpoint: str | None = None, *, limit: int = 50) -> list[AuditEntry]:
        """Audited changes, newest first."""
        if endpoint is not None:
            self._kind(endpoint)
        query = select(flag_audit).order_by(flag_audit.c.id.desc()).limit(limit)
        if endpoint is not None:
            query = query.where(flag_audit.c.endpoint == endpoint)
        with self._engine().connect() as connection:
            return [
                AuditEntry(
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
                for row in connection.execute(query)
            ]

    def set_stage(
        self,
        endpoint: str,
        stage: str,
        *,
        percent: float | None = None,
        sample_rate: float | None = None,
        actor: str,
        reason: str,
        force: bool = False,
    ) -> FlagState:
        """Change an endpoint's flag, audited. Promoting a read endpoint to ``live`` or
        ``complete`` (or widening its percentage there) must pass the promotion gate
        unless ``force``. Omitted ``percent``: kept when the stage stays, else 100.
        Omitted ``sample_rate``: kept. Setting the same values again is recorded and
        changes nothing else."""
        kind = self._kind(endpoint)
        stage = rollout.normalize_stage(kind, stage)
        new_percent = None if percent is None else rollout.validate_percent(percent)
        new_rate = None if sample_rate is None else rollout.validate_sample_rate(sample_rate)
        actor, reason = (actor or "").strip(), (reason or "").strip()
        if not actor:
            raise ValidationFailed("say who makes the change", field="actor")
        if force and not reason:
            raise ValidationFailed("a forced change needs a reason", field="reason")

        engine = self._engine()
        with engine.connect() as connection:
            before = self._current(connection, endpoint, kind)
        to_percent = new_percent if new_percent is not None else _kept_percent(before, stage)
        to_rate = new_rate if new_rate is not None else before.sample_rate
        promoting = stage != before.stage or to_percent > before.percent
        if kind == "read" and stage in rollout.GATED_STAGES and promoting and not force:
            # Outside the write transaction: verify may scan whole tables.
            gate.check_promotion(self.state, engine, endpoint, stage, self._stored_stage)

        after = self._write(engine, before, stage, to_percent, to_rate, actor, reason, force)
        self.invalidate()
        log.warning(
            "flag %s: %s %g%% -> %s %g%% by %s%s (%s)",
            endpoint,
            before.stage,
            before.percent,
            after.stage,
            after.percent,
            actor,
            " FORCED" if force else "",
            reason or "no reason given",
        )
        return after

    def _write(
        self,
        engine: Engine,
        before: FlagState,
        stage: str,
        percent: float,
        sample_rate: float,
        actor: str,
        reason: str,
        forced: bool,
    ) -> FlagState:
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
            with engine.begin() as connection:
                if before.source == DATABASE:
                    # Compare-and-set on version: the gate judged ``before``, not a
                    # change someone committed since.
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
        return FlagState(
            before.endpoint, before.kind, stage, percent, sample_rate, DATABASE, now, actor,
            before.version + 1,
        )  # fmt: skip

    def _stored_stage(self, connection: Connection, endpoint: str) -> FlagState:
        return self._current(connection, endpoint, self._kind(endpoint))

    def _current(self, connection: Connection, endpoint: str, kind: str) -> FlagState:
        row = connection.execute(select(flags).where(flags.c.endpoint == endpoint)).first()
        return _state_from_row(row, kind) if row is not None else self._config_state(endpoint, kind)

    def _config_state(self, endpoint: str, kind: str) -> FlagState:
        stage, percent, sample_rate = self._configured(endpoint, kind)
        return FlagState(endpoint, kind, stage, percent, sample_rate, CONFIG)

    def _kind(self, endpoint: str) -> str:
        wrapped = self.state.endpoints.get(endpoint)
        if wrapped is None:
            known = ", ".join(sorted(self.state.endpoints)) or "none"
            raise UnknownEndpoint(
                f"no wrapped endpoint named {endpoint!r} (known: {known})", field="endpoint"
            )
        return wrapped.kind


def load_rows(connection: Connection) -> dict[str, tuple[str, float, float]]:
    """The one query a cache refresh costs."""
    query = select(flags.c.endpoint, flags.c.stage, flags.c.percent, flags.c.sample_rate)
    return {
        endpoint: (stage, float(percent), float(sample_rate))
        for endpoint, stage, percent, sample_rate in connection.execute(query)
    }


def _state_from_row(row: Any, kind: str) -> FlagState:
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


def _kept_percent(before: FlagState, stage: str) -> float:
    # Re-setting the same stage must not silently widen a partial rollout to everyone.
    return before.percent if stage == before.stage else 100.0


def _concurrent(endpoint: str) -> ConcurrencyConflict:
    return ConcurrencyConflict(
        f"the flag of {endpoint} changed while this change was being made; re-read and retry",
        field="endpoint",
    )


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="milliseconds") + "Z"
