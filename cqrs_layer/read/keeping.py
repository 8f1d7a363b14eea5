"""Keeping read models current inside the writing transaction, whatever code writes.

A hook on the app's session class runs just before every commit: the capture triggers
have recorded, in this transaction, the read-model keys its writes changed; the refresher
recomputes them (:meth:`cqrs_layer.read.refresh.Refresher.refresh_own`) so they commit
together with the write. A legacy form view, a ``before_request`` hook, a many-to-many
flush or a script using the app's session need no change to be covered.

If the refresh cannot be done (a read model broken, locked, slow) or leaves keys for
later (a bulk write), the write still commits; the keys stay pending, reads of those
models fall back to legacy, and a background refresh is asked for after the commit.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from flask import Flask, current_app, has_app_context
from sqlalchemy import Connection, event
from sqlalchemy.orm import Session, SessionTransaction

from .refresh import Refresher

_CONNECTION_KEY = "cqrs.transaction_connection"
_HEAL_KEY = "cqrs.refresh_after_commit"
_listened: set[type[Session]] = set()


class Keeper:
    """One app's hook: its refresher, its time bound, and how to ask for a later refresh."""

    def __init__(
        self,
        refresher: Refresher,
        timeout_ms: float,
        refresh_later: Callable[[set[str]], object],
    ) -> None:
        self.refresher = refresher
        self.timeout_ms = timeout_ms
        self.refresh_later = refresh_later


# Session events are per session class, shared by every app: the hook finds the current
# app's keeper here.
_keepers: weakref.WeakKeyDictionary[Flask, Keeper] = weakref.WeakKeyDictionary()


def install(app: Flask, session_class: type[Session], keeper: Keeper) -> None:
    _keepers[app] = keeper
    if session_class in _listened:
        return
    event.listen(session_class, "after_begin", _remember_connection)
    event.listen(session_class, "before_commit", _refresh_before_commit)
    event.listen(session_class, "after_commit", _after_commit)
    event.listen(session_class, "after_rollback", _forget_connection)
    _listened.add(session_class)


def _current_keeper() -> Keeper | None:
    if not has_app_context():
        return None
    return _keepers.get(current_app._get_current_object())  # type: ignore[attr-defined]


def _remember_connection(
    session: Session, _transaction: SessionTransaction, connection: Connection
) -> None:
    # Only a transaction that touched the database has anything to refresh.
    session.info[_CONNECTION_KEY] = connection


def _forget_connection(session: Session, *_args: Any) -> None:
    session.info.pop(_CONNECTION_KEY, None)
    session.info.pop(_HEAL_KEY, None)


def _refresh_before_commit(session: Session) -> None:
    keeper = _current_keeper()
    if keeper is None:
        return
    session.flush()  # the last writes' triggers must have fired (before_commit precedes it)
    connection: Connection | None = session.info.get(_CONNECTION_KEY)
    if connection is None or connection.closed:
        return
    result = keeper.refresher.refresh_own(connection, timeout_ms=keeper.timeout_ms)
    unfinished = set(result.failed) | set(result.unfinished)
    if unfinished:
        session.info[_HEAL_KEY] = unfinished


def _after_commit(session: Session) -> None:
    unfinished: set[str] | None = session.info.pop(_HEAL_KEY, None)
    session.info.pop(_CONNECTION_KEY, None)
    keeper = _current_keeper()
    if unfinished and keeper is not None:
        keeper.refresh_later(unfinished)
