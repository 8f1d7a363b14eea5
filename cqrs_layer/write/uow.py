"""The unit of work: one transaction per command, with its events written atomically.

A handler ``handler(command, uow)`` changes models through ``uow.session`` and records what
happened with ``uow.record(event)``. On success the unit of work flushes, appends the
events to the outbox, applies inline projections, lets ``before_commit`` hooks (the
idempotency record) write, and commits — all in ONE transaction, so an event exists iff
its transaction committed. On any exception it rolls back and nothing is kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Protocol

from blinker import NamedSignal
from flask import Flask
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from ..core import logs, metrics, signals
from ..core.messages import Event, StoredEvent
from . import outbox


class ProjectionApplier(Protocol):
    def apply(self, connection: Connection, stored_events: list[StoredEvent]) -> object: ...


#: Called as ``hook(uow, result)`` just before commit, inside the transaction.
BeforeCommit = Callable[["UnitOfWork", Any], None]

_active: ContextVar[UnitOfWork | None] = ContextVar("cqrs_active_uow", default=None)
_pending_hooks: ContextVar[tuple[BeforeCommit, ...]] = ContextVar(
    "cqrs_before_commit_hooks", default=()
)


def active_unit_of_work() -> UnitOfWork | None:
    """The unit of work of the command running in this context, if any."""
    return _active.get()


@contextmanager
def before_commit(hook: BeforeCommit) -> Iterator[None]:
    """Have the next command dispatched in this block call ``hook`` before it commits."""
    token = _pending_hooks.set((*_pending_hooks.get(), hook))
    try:
        yield
    finally:
        _pending_hooks.reset(token)


class UnitOfWork:
    def __init__(
        self,
        session: Session,
        *,
        app: Flask,
        projections: ProjectionApplier,
        correlation_id: str | None,
    ) -> None:
        self.session = session
        self.app = app
        self.correlation_id = correlation_id
        self.events: list[Event] = []
        self.stored: list[StoredEvent] = []
        self._projections = projections
        self._hooks = _pending_hooks.get()

    def record(self, *events: Event) -> None:
        self.events.extend(events)

    @contextmanager
    def activate(self) -> Iterator[UnitOfWork]:
        """Mark this context as inside a command (the write guard allows its writes)."""
        token = _active.set(self)
        hooks_token = _pending_hooks.set(())  # hooks belong to this uow, not to nested ones
        try:
            yield self
        finally:
            _pending_hooks.reset(hooks_token)
            _active.reset(token)

    def commit(self, result: Any) -> None:
        self.session.flush()
        connection = self.session.connection()
        self.stored = outbox.append(connection, self.events, correlation_id=self.correlation_id)
        self._projections.apply(connection, self.stored)
        signals.events_recorded.send(self.app, events=self.stored, session=self.session)
        for hook in self._hooks:
            hook(self, result)
        self.session.commit()
        for stored in self.stored:
            metrics.events_recorded_total.labels(event_type=stored.event_type).inc()
        if self.stored:
            send_logging_failures(signals.events_committed, self.app, events=self.stored)

    def rollback(self) -> None:
        self.session.rollback()
        self.stored = []


def send_logging_failures(signal: NamedSignal, sender: Flask, **kwargs: Any) -> None:
    """Send ``signal`` receiver by receiver, after the write is done: a failing receiver
    is logged and the others still run (blinker's ``send`` would stop at the first one),
    and nothing is undone."""
    for receiver in list(signal.receivers_for(sender)):
        try:
            receiver(sender, **kwargs)
        except Exception:
            logs.events.exception("%s receiver %r failed (the write stands)", signal.name, receiver)
