"""Refresh by key: recompute exactly the read-model rows whose inputs changed.

The capture triggers (:mod:`cqrs_layer.read.capture`) leave ``(model, key)`` rows in
``cqrs_changes``. A refresh deletes the read-model rows of those keys and inserts them
again from the model's ``source()`` restricted to the keys, then deletes the change rows
it applied; all in one transaction, so a key is either still pending or exact.

Two callers:

* the writing transaction itself, just before it commits (:meth:`Refresher.refresh_own`):
  its own changes, in a SAVEPOINT with short lock and statement timeouts. If that fails
  (the read-model table is gone, locked, broken) only the savepoint is rolled back: the
  write commits as legacy would have, its changes stay pending (reads fall back to
  legacy) and are applied later;
* :meth:`Refresher.refresh_committed` (``flask cqrs refresh``, and the app in the
  background after a read found changes pending): the changes other writers committed
  (scripts, cron jobs, other services, ``psql``), in batches.

Concurrent refreshes of one key on PostgreSQL would race (each computing from a snapshot
that misses the other's write, the later one overwriting the earlier), so a refresh takes
a transaction-scoped advisory lock per key, in key order, before it computes: the second
waits for the first to commit and then sees its write. A hand-written projection takes the
same locks before it adds to a row (:func:`wait_for_refreshes_of`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Executable,
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    literal,
    select,
    text,
    union_all,
)
from sqlalchemy.exc import SQLAlchemyError

from ..core import logs
from ..core.own_changes import own_condition
from ..core.read_model import ReadModel
from ..core.sql import batched_round_trips, bound_waits, unbound_waits, write_locked
from ..core.tables import changes
from .backfill import backfill, source_columns
from .pushdown import pushed_down

#: A refresh key: the values of the model's ``refresh_by`` columns; None means every key.
Key = tuple[Any, ...] | None
#: How many keys one transaction of :meth:`Refresher.refresh_committed` applies.
BATCH = 500
#: Past this many change rows of one model, :meth:`Refresher.refresh_committed` rebuilds it.
REBUILD_ABOVE = 20_000
#: How many keys per model a writing transaction recomputes before it commits; a bigger
#: write (a bulk import through the ORM) leaves the rest pending for the background.
OWN_LIMIT = 200
#: For this long after a writing transaction failed to refresh a model (its table gone,
#: locked), the next writes try it in a savepoint of its own, not with the others.
SUSPECT_SECONDS = 5.0


@dataclass
class Pending:
    """Change rows of one model, by the key they name."""

    rows: dict[Key, list[int]] = field(default_factory=dict)

    @property
    def keys(self) -> set[Key]:
        return set(self.rows)

    @property
    def ids(self) -> list[int]:
        return [row_id for ids in self.rows.values() for row_id in ids]

    def add(self, key: Key, row_id: int) -> None:
        self.rows.setdefault(key, []).append(row_id)

    def first(self, limit: int) -> Pending:
        """The rows of the first ``limit`` keys (every key, for a "every key" row)."""
        if None in self.rows or len(self.rows) <= limit:
            return self
        return Pending(dict(list(self.rows.items())[:limit]))


@dataclass(frozen=True)
class RefreshResult:
    models: dict[str, int]  # model -> keys recomputed
    failed: dict[str, str] = field(default_factory=dict)  # model -> why
    #: Models with keys left for later (more than a writing transaction recomputes).
    unfinished: frozenset[str] = frozenset()

    @property
    def keys(self) -> int:
        return sum(self.models.values())


class Refresher:
    def __init__(
        self,
        read_models: Callable[[], Mapping[str, ReadModel]],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read_models = read_models
        self._clock = clock
        #: Model -> when a writing transaction last failed to refresh it (this process).
        self._failed_at: dict[str, float] = {}

    # ------------------------------------------------------------ the writing transaction

    def refresh_own(
        self, connection: Connection, *, timeout_ms: float, limit: int = OWN_LIMIT
    ) -> RefreshResult:
        """Apply this transaction's own changes before it commits (SQLite, where they
        cannot be told apart: every change it can see), up to ``limit`` keys per model;
        never raises for a read model that cannot be refreshed (see the module).

        Every model is recomputed in one savepoint, its statements sent together: a
        write pays a handful of round trips whatever the number of read models. Should
        that fail, each model is tried again in a savepoint of its own, so one broken
        read model leaves only its own keys pending; a model that failed in the last
        ``SUSPECT_SECONDS`` goes straight to its own savepoint."""
        pending = own_changes(connection)
        if not pending:
            return RefreshResult({})
        models = self._read_models()
        work: dict[str, tuple[ReadModel, Pending]] = {}
        unfinished: set[str] = set()
        for name, everything in pending.items():
            model = models.get(name)
            if model is None:
                continue  # captured for a model this app does not register: not ours
            found = everything.first(limit)
            if len(found.rows) < len(everything.rows):
                unfinished.add(name)
            work[name] = (model, found)
        now = self._clock()
        suspects = {
            name
            for name in work
            if now - self._failed_at.get(name, -SUSPECT_SECONDS) < SUSPECT_SECONDS
        }
        together = {name: work[name] for name in work if name not in suspects}
        alone = [name for name in work if name in suspects]
        done: dict[str, int] = {}
        failed: dict[str, str] = {}
        if together and self._try(connection, together, timeout_ms) is None:
            done.update({name: len(found.keys) for name, (_model, found) in together.items()})
        else:
            alone = sorted(set(alone) | set(together))
        for name in alone:
            why = self._try(connection, {name: work[name]}, timeout_ms)
            if why is None:
                done[name] = len(work[name][1].keys)
                self._failed_at.pop(name, None)
            else:
                failed[name] = why
                self._failed_at[name] = self._clock()
                logs.refresh.warning("read model %s not refreshed (stays pending): %s", name, why)
        return RefreshResult(done, failed, frozenset(unfinished))

    @staticmethod
    def _try(
        connection: Connection, work: Mapping[str, tuple[ReadModel, Pending]], timeout_ms: float
    ) -> str | None:
        """Recompute ``work`` in a savepoint; None when done, else why not (rolled back)."""
        savepoint = connection.begin_nested()
        try:
            bound_waits(connection, timeout_ms)
            recompute_many(connection, {model: found for model, found in work.values()})
            unbound_waits(connection)
            savepoint.commit()
        except SQLAlchemyError as error:
            savepoint.rollback()  # the write goes on; its keys stay pending
            return f"{type(error).__name__}: {error}".splitlines()[0]
        return None

    # ------------------------------------------------------------ changes left committed

    def refresh_committed(
        self,
        engine: Engine,
        *,
        only: Iterable[str] | None = None,
        batch: int = BATCH,
        rebuild_above: int = REBUILD_ABOVE,
    ) -> RefreshResult:
        """Apply every committed change (of the ``only`` models), ``batch`` keys per
        transaction, until none is left. A model with more than ``rebuild_above`` change
        rows (a bulk load, a mass UPDATE) is rebuilt whole instead: one set-based
        backfill beats thousands of keyed recomputes."""
        models = self._read_models()
        names = sorted(only) if only is not None else sorted(models)
        done: dict[str, int] = {}
        failed: dict[str, str] = {}
        for name in names:
            model = models[name]
            try:
                with engine.connect() as connection:
                    waiting = pending_counts(connection).get(name, 0)
                if waiting > rebuild_above:
                    done[name] = backfill(engine, model).rows
                    continue
                while True:
                    applied = self._apply_batch(engine, model, batch)
                    if not applied:
                        break
                    done[name] = done.get(name, 0) + applied
            except SQLAlchemyError as error:
                failed[name] = f"{type(error).__name__}: {error}".splitlines()[0]
                logs.refresh.warning("read model %s not refreshed: %s", name, error)
        return RefreshResult(done, failed)

    def _apply_batch(self, engine: Engine, model: ReadModel, batch: int) -> int:
        with write_locked(engine, None) as connection:
            found = committed_changes(connection, model.name, batch)
            if not found.ids:
                return 0
            recompute(connection, model, found.keys)
            forget(connection, found.ids)
            return len(found.keys)


# ---------------------------------------------------------------- reading the changes


def own_changes(connection: Connection) -> dict[str, Pending]:
    """The changes the current transaction made; on SQLite, unless the transaction was
    marked (:mod:`cqrs_layer.core.own_changes`), every change it can see (a writing
    transaction there excludes all other writers, so applying them all is safe)."""
    query = select(changes.c.id, changes.c.model, changes.c.key).order_by(changes.c.id)
    condition = own_condition(connection)
    if condition is not None:
        query = query.where(condition)
    return _by_model(connection.execute(query))


def committed_changes(connection: Connection, model: str, limit: int) -> Pending:
    """The oldest change rows of ``model``, for up to ``limit`` distinct keys."""
    rows = connection.execute(
        select(changes.c.id, changes.c.model, changes.c.key)
        .where(changes.c.model == model)
        .order_by(changes.c.id)
        .limit(limit * 4)  # keys repeat: a little more than needed, trimmed below
    ).all()
    found = Pending()
    for row_id, _model, key in rows:
        decoded = decode(key)
        if decoded not in found.rows and len(found.rows) >= limit:
            continue
        found.add(decoded, row_id)
    return found


def pending_models(connection: Connection, models: Iterable[str]) -> list[str]:
    """Which of ``models`` have changes not yet applied (as this snapshot sees them)."""
    wanted = list(models)
    if not wanted:
        return []
    # One EXISTS per model, not a DISTINCT over them: each stops at its first live row,
    # and its index scan marks the dead entries it passes (the rows refreshes deleted,
    # many until a vacuum) so the next read skips them; a bitmap scan would visit them
    # all on every live read.
    found = union_all(
        *(
            select(literal(name).label("model")).where(exists().where(changes.c.model == name))
            for name in sorted(set(wanted))
        )
    )
    return sorted(connection.scalars(found))


def pending_counts(connection: Connection) -> dict[str, int]:
    """Change rows not yet applied, per model."""
    query = select(changes.c.model, func.count()).group_by(changes.c.model)
    return {model: int(count) for model, count in connection.execute(query)}


def _by_model(rows: Iterable[Any]) -> dict[str, Pending]:
    found: dict[str, Pending] = {}
    for row_id, model, key in rows:
        found.setdefault(model, Pending()).add(decode(key), row_id)
    return found


def decode(key: str | None) -> Key:
    return None if key is None else tuple(json.loads(key))


def forget(connection: Connection, ids: Sequence[int]) -> None:
    """Delete exactly the change rows applied: one committed meanwhile stays pending."""
    for start in range(0, len(ids), 1000):
        chunk = list(ids[start : start + 1000])
        connection.execute(delete(changes).where(changes.c.id.in_(chunk)))


# ---------------------------------------------------------------- recomputing rows


def recompute(connection: Connection, model: ReadModel, keys: set[Key]) -> None:
    """Make the rows of ``keys`` equal to the source again (every row, for ``None``)."""
    if None in keys:
        connection.execute(delete(model.table))
        statements = _statements(model)
        connection.execute(statements.insert_all)
        return
    typed = sorted({typed_key(model, key) for key in keys if key is not None}, key=repr)
    if not typed:
        return
    if connection.dialect.name == "postgresql":
        _lock_keys(connection, model, typed)
    with batched_round_trips(connection):
        _replace_rows(connection, model, typed)


def recompute_many(connection: Connection, work: Mapping[ReadModel, Pending]) -> None:
    """Recompute the keys of several models and forget their change rows, with one lock
    statement and one batch of statements for all of them (PostgreSQL)."""
    keyed: dict[ReadModel, list[tuple[Any, ...]]] = {}
    for model, found in work.items():
        if None in found.keys:
            recompute(connection, model, {None})
        else:
            keyed[model] = sorted({typed_key(model, k) for k in found.keys if k}, key=repr)
    if connection.dialect.name == "postgresql":
        ids = {_lock_id(m.name, key) for m, keys in keyed.items() for key in keys}
        if ids:
            _lock_ids(connection, ids)
    with batched_round_trips(connection):
        for model, keys in keyed.items():
            if keys:
                _replace_rows(connection, model, keys)
        forget(connection, [row_id for found in work.values() for row_id in found.ids])


def _replace_rows(connection: Connection, model: ReadModel, keys: list[tuple[Any, ...]]) -> None:
    statements = _statements(model)
    params = [{f"k{i}": value for i, value in enumerate(key)} for key in keys]
    connection.execute(statements.delete_keyed, params)
    connection.execute(statements.insert_keyed, params)


@dataclass(frozen=True)
class _Statements:
    delete_keyed: Executable
    insert_keyed: Executable
    insert_all: Executable


@functools.cache
def _statements_of(model: ReadModel) -> _Statements:
    columns = source_columns(model)
    table = model.table
    by = list(model.refresh_by)
    params = [bindparam(f"k{i}", type_=table.c[column].type) for i, column in enumerate(by)]
    source = model.source().subquery("cqrs_source")
    keyed_source = pushed_down(model.source(), dict(zip(by, params, strict=True)))
    keyed = keyed_source.subquery("cqrs_source")
    chosen = select(*(source.c[column] for column in columns))
    return _Statements(
        delete_keyed=delete(table).where(
            and_(*(table.c[column] == param for column, param in zip(by, params, strict=True)))
        ),
        # One key per execution, compared with =, and pushed into the source's GROUP BY
        # subqueries (cqrs_layer.read.pushdown), where an IN list would defeat it.
        insert_keyed=insert(table).from_select(
            columns,
            select(*(keyed.c[column] for column in columns)).where(
                and_(*(keyed.c[c] == param for c, param in zip(by, params, strict=True)))
            ),
        ),
        insert_all=insert(table).from_select(columns, chosen),
    )


def _statements(model: ReadModel) -> _Statements:
    return _statements_of(model)


def typed_key(model: ReadModel, key: tuple[Any, ...]) -> tuple[Any, ...]:
    """A decoded key with each value of its column's Python type (JSON has no dates)."""
    values = []
    for column, value in zip(model.refresh_by, key, strict=True):
        values.append(_as_type(model.table.c[column].type.python_type, value))
    return tuple(values)


def _as_type(python_type: type, value: Any) -> Any:
    if value is None or isinstance(value, python_type):
        return value
    if python_type is datetime:
        return datetime.fromisoformat(str(value).replace(" ", "T"))
    if python_type is date:
        return date.fromisoformat(str(value)[:10])
    if python_type is Decimal:
        return Decimal(str(value))
    return python_type(value)


def _lock_keys(connection: Connection, model: ReadModel, keys: list[tuple[Any, ...]]) -> None:
    """Transaction-scoped advisory locks on (model, key), taken in one order everywhere
    (sorted), so two refreshes never wait for each other in a cycle."""
    _lock_ids(connection, {_lock_id(model.name, key) for key in keys})


def _lock_ids(connection: Connection, ids: set[int]) -> None:
    connection.execute(
        text("SELECT pg_advisory_xact_lock(h) FROM unnest(CAST(:hashes AS bigint[])) AS h"),
        {"hashes": sorted(ids)},
    )


def wait_for_refreshes_of(
    connection: Connection, models: Iterable[ReadModel], own: Mapping[str, Pending]
) -> None:
    """Take the refresh locks of the keys this transaction changed in ``models`` (its
    ``own`` changes, what its capture recorded), so that a hand-written projection's
    increments land on the row a concurrent refresh wrote, not on one it deleted
    (PostgreSQL's READ COMMITTED UPDATE skips a row deleted while it waited, and the
    increment would be lost). Nothing to do on SQLite, where one transaction writes at
    a time."""
    if connection.dialect.name != "postgresql":
        return
    ids = {
        _lock_id(model.name, typed_key(model, key))
        for model in models
        for key in own.get(model.name, Pending()).keys
        if key is not None
    }
    if ids:
        _lock_ids(connection, ids)


def _lock_id(model: str, key: tuple[Any, ...]) -> int:
    digest = hashlib.blake2b(f"{model}\x00{key!r}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
