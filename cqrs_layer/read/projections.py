"""Projections: event handlers that keep denormalized read-model tables up to date.

One :class:`ProjectionDispatcher` receives every batch of stored events and routes each
event to the projections that handle its type. It is called directly by the unit of work
(not through a blinker signal, whose receivers are weak and unordered), so its failure
policy is the one written here:

* Inline projections run in the command's transaction. For a read model kept by them
  alone, they are part of the write: a handler that raises propagates out of
  :meth:`ProjectionDispatcher.apply`, the command aborts and nothing it wrote commits, so
  a broken projection can never leave that read model silently behind. For read models
  with change capture they are an optimisation, isolated in a savepoint: if they fail,
  refresh-by-key keeps the read model exact instead, and the write goes on.
* Each (projection, position) is applied at most once: before any handler runs, the
  tracking rows of every (projection, position) pair in the batch are inserted in ONE
  ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` in the same transaction as the
  read-model changes; a pair it does not return was applied already, so that handler is
  skipped. Together with the outbox (an event exists iff its command committed) that is
  exactly-once in effect.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection, Executable

from ..core import logs
from ..core.messages import Event, StoredEvent
from ..core.own_changes import own_condition
from ..core.read_model import ReadModel
from ..core.sql import batched_round_trips, bound_waits, dialect_insert_for, unbound_waits
from ..core.tables import projection_tracking
from .refresh import Pending, forget, own_changes, wait_for_refreshes_of

E = TypeVar("E", bound=Event)
Handler = Callable[[Any, "ProjectionContext"], None]

#: cqrs_projection_tracking.projection is a String(100).
MAX_NAME_LENGTH = 100


@dataclass(frozen=True, slots=True)
class ProjectionContext:
    """What a handler gets besides the event: where to write and which record it is."""

    #: The connection of the transaction applying the event (the command's, inline).
    connection: Connection
    #: The outbox record: position, occurred_at (aware UTC), correlation_id, ...
    stored: StoredEvent


class Projection:
    """A named set of event handlers that maintain one or more read models."""

    def __init__(
        self,
        name: str,
        read_models: Iterable[ReadModel] = (),
        *,
        batch_round_trips: bool = False,
    ) -> None:
        """``batch_round_trips``: the handlers only write and never read the ``rowcount``
        of their writes, so their statements may go to the database together
        (:func:`cqrs_layer.sql.batched_round_trips`; PostgreSQL via psycopg 3)."""
        if not 0 < len(name) <= MAX_NAME_LENGTH:
            raise ValueError(f"projection name must be 1-{MAX_NAME_LENGTH} characters: {name!r}")
        self.name = name
        self.read_models = tuple(read_models)
        self.batch_round_trips = batch_round_trips
        self._handlers: dict[str, Handler] = {}

    def on(self, *event_types: type[E]) -> Callable[[Callable[[E, ProjectionContext], None]], Any]:
        """Register the decorated function as the handler of ``event_types``."""
        if not event_types:
            raise TypeError("on() needs at least one event type")

        def register(handler: Callable[[E, ProjectionContext], None]) -> Any:
            for event_type in event_types:
                if event_type.event_type in self._handlers:
                    raise ValueError(
                        f"projection {self.name!r} already handles {event_type.event_type!r}"
                    )
                self._handlers[event_type.event_type] = handler
            return handler

        return register

    def handler_for(self, event_type: str) -> Handler | None:
        return self._handlers.get(event_type)

    @property
    def handled_event_types(self) -> frozenset[str]:
        return frozenset(self._handlers)

    def __repr__(self) -> str:
        return f"Projection({self.name!r}, handles={sorted(self._handlers)})"


class ProjectionDispatcher:
    """Routes stored events to projections, at most once per (projection, position)."""

    def __init__(
        self,
        projections: Iterable[Projection] = (),
        *,
        kept_by_capture: Callable[[str], bool] = lambda _name: False,
        timeout_ms: float = 200,
    ) -> None:
        """``kept_by_capture``: whether a read model has change capture installed, so a
        failed projection can be left to refresh-by-key instead of failing the write;
        ``timeout_ms``: how long such isolated projections may wait for a lock."""
        self._kept_by_capture = kept_by_capture
        self._timeout_ms = timeout_ms
        self._projections: dict[str, Projection] = {}
        for projection in projections:
            self.add(projection)

    def add(self, projection: Projection) -> None:
        existing = self._projections.get(projection.name)
        if existing is not None and existing is not projection:
            raise ValueError(f"a projection named {projection.name!r} is already registered")
        self._projections[projection.name] = projection

    @property
    def projections(self) -> dict[str, Projection]:
        return dict(self._projections)

    def handled_event_types(self) -> set[str]:
        return {t for p in self._projections.values() for t in p.handled_event_types}

    def apply(self, connection: Connection, stored_events: Sequence[StoredEvent]) -> int:
        """Apply events inline, in the caller's (the command's) transaction; returns how
        many (projection, event) pairs were newly applied.

        When a read model the batch's projections maintain has no change capture, a
        failing handler fails the write: it raises (with a note naming the projection and
        position) and the caller must roll back, which also removes the tracking rows;
        nothing else would ever bring that read model up to date. When every such read
        model has capture, the projections run in a savepoint with short lock and
        statement timeouts, and if they fail (a read-model table gone, locked, a bug)
        only the savepoint is rolled back: the write goes on, and the keys the capture
        recorded are recomputed by the refresh before commit, or left pending. Those
        projections first wait for any refresh of the keys the write changed (PostgreSQL),
        so an increment never lands on a row a refresh is replacing.
        Events already applied are skipped.

        A projection that handles every event of the batch has made its read models
        current: the keys the capture triggers recorded for them in this transaction are
        forgotten, so the refresh before commit does not recompute what it just wrote.
        (That is the contract of a hand-written projection: a command's events say all it
        changed in the projection's sources.)
        """
        involved = self._involved(stored_events)
        if involved is None:
            return 0
        covered = self.covered_read_models(stored_events)
        # The projections write only read models, which have no capture: what the
        # command's writes recorded is all there is, before and after they run.
        own = own_changes(connection) if own_condition(connection) is not None else {}
        if not involved or not all(self._kept_by_capture(model) for model in involved):
            applied = self._dispatch(connection, stored_events, self._projections.values())
        else:
            savepoint = connection.begin_nested()
            try:
                bound_waits(connection, self._timeout_ms)
                wait_for_refreshes_of(connection, self._read_models_of(involved), own)
                applied = self._dispatch(connection, stored_events, self._projections.values())
                unbound_waits(connection)
                savepoint.commit()
            except Exception:
                savepoint.rollback()
                logs.projection.exception(
                    "projections failed; their read models (%s) are refreshed by key instead",
                    ", ".join(sorted(involved)),
                )
                return 0
        # By id, not by model: the model index holds every change row deleted since the
        # last vacuum, and a scan of it costs milliseconds.
        forget(connection, [row_id for name in covered for row_id in own.get(name, Pending()).ids])
        return applied

    def _involved(self, stored_events: Sequence[StoredEvent]) -> set[str] | None:
        """The read models of the projections handling any event of the batch; None when
        no projection handles one, empty when one declares no read model (nothing can
        then be left to refresh-by-key)."""
        types = {stored.event_type for stored in stored_events}
        handling = [p for p in self._projections.values() if types & p.handled_event_types]
        if not handling:
            return None
        if not all(projection.read_models for projection in handling):
            return set()
        return {model.name for projection in handling for model in projection.read_models}

    def _read_models_of(self, names: set[str]) -> list[ReadModel]:
        found = {m.name: m for p in self._projections.values() for m in p.read_models}
        return [found[name] for name in sorted(names)]

    def covered_read_models(self, stored_events: Sequence[StoredEvent]) -> set[str]:
        """The read models of the projections that handle every event in the batch."""
        types = {stored.event_type for stored in stored_events}
        if not types:
            return set()
        return {
            model.name
            for projection in self._projections.values()
            if types <= projection.handled_event_types
            for model in projection.read_models
        }

    def _dispatch(
        self,
        connection: Connection,
        stored_events: Sequence[StoredEvent],
        projections: Iterable[Projection],
    ) -> int:
        projections = list(projections)
        plan = [
            (stored, handlers)
            for stored in stored_events
            if (handlers := _handlers_of(projections, stored.event_type))
        ]  # events nothing handles get no tracking row and no payload parsing
        claimed = _claim(
            connection,
            [
                (projection.name, stored.position)
                for stored, handlers in plan
                for projection, _ in handlers
            ],
        )
        # Projections that allow it send their statements in one round trip; the others
        # run after them. Each projection still sees the batch's events in order, and
        # projections maintain separate read models, so their relative order is free.
        batched = [p for p in projections if p.batch_round_trips]
        others = [p for p in projections if not p.batch_round_trips]
        applied = 0
        if batched:
            with batched_round_trips(connection):
                applied += _apply_plan(connection, plan, claimed, only=batched)
        return applied + _apply_plan(connection, plan, claimed, only=others)


def _apply_plan(
    connection: Connection,
    plan: list[tuple[StoredEvent, list[tuple[Projection, Handler]]]],
    claimed: set[tuple[str, int]],
    *,
    only: list[Projection],
) -> int:
    applied = 0
    for stored, handlers in plan:
        event: Event | None = None
        context = ProjectionContext(connection=connection, stored=stored)
        for projection, handler in handlers:
            if projection not in only:
                continue
            try:
                # Removed once used: the same event twice in a batch applies once.
                claimed.remove((projection.name, stored.position))
            except KeyError:
                continue  # applied before: at most once
            if event is None:
                event = stored.event
            try:
                handler(event, context)
            except Exception as error:
                error.add_note(
                    f"in projection {projection.name!r} applying {stored.event_type} "
                    f"at position {stored.position}; the transaction must roll back"
                )
                raise
            applied += 1
    return applied


def _handlers_of(
    projections: list[Projection], event_type: str
) -> list[tuple[Projection, Handler]]:
    return [(p, handler) for p in projections if (handler := p.handler_for(event_type)) is not None]


def _claim(connection: Connection, pairs: list[tuple[str, int]]) -> set[tuple[str, int]]:
    """Record each (projection, position) as applied; returns the pairs that were not
    already, i.e. the ones to apply now. One statement whatever the number of pairs
    (SQLAlchemy renders the parameter list as a multi-row VALUES)."""
    if not pairs:
        return set()
    rows = [{"projection": name, "position": position} for name, position in dict.fromkeys(pairs)]
    inserted = connection.execute(_claim_statement(connection.dialect.name), rows)
    return {(name, position) for name, position in inserted}


@functools.cache
def _claim_statement(dialect: str) -> Executable:
    # Built once per dialect: constructing it (and its cache key) per event costs more
    # than running it. RETURNING yields only the rows inserted, not the conflicting ones.
    tracking = projection_tracking.c
    return (
        dialect_insert_for(dialect, projection_tracking)
        .on_conflict_do_nothing(index_elements=[tracking.projection, tracking.position])
        .returning(tracking.projection, tracking.position)
    )


class _NoProjections:
    """What commands apply when ``CQRS_INLINE_PROJECTIONS`` is off: nothing, so every
    read model is kept by refresh-by-key alone."""

    def apply(self, connection: Connection, stored_events: Sequence[StoredEvent]) -> int:
        return 0


NO_PROJECTIONS = _NoProjections()
