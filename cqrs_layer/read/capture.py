"""Change capture: database triggers, generated from a read model's lineage, that record
which of its keys a write changes, in the writing transaction, whatever issued the write.

For each table a read model reads, AFTER INSERT / UPDATE / DELETE row triggers insert the
refresh keys the changed row maps to (its new and its old values: a row moving between
keys changes both) into ``cqrs_changes``, as ``(model, key)`` with the key as a JSON array.
The ORM (many-to-many ``secondary`` tables, cascades, collection changes), Core and raw SQL
statements, scripts with the database driver, other services and ``psql`` all go through
them. Updates fire only when a column the model reads (or maps keys by) is named and
changed, so a write to ``user.last_seen`` records nothing for a model that never reads it.
On PostgreSQL each row also carries the writing transaction's id, so a transaction can
find its own changes, and a TRUNCATE records "every key" (a NULL key).

The triggers write nothing but ``cqrs_changes``: a read-model table renamed away or locked
cannot fail or stall the write. They are installed by an alembic migration
(:func:`cqrs_layer.schema.install_capture`) or, for tests, :func:`install`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Insert,
    Table,
    Text,
    and_,
    cast,
    delete,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql import visitors

from ..core.lineage import NO_OPTIONS, KeyMapping, base_table
from ..core.read_model import ReadModel
from ..core.tables import captures, changes

MAX_IDENTIFIER = 63  # PostgreSQL's limit; SQLite has none, the names stay the same on both
TRUNCATE_FUNCTION = "cqrs_capture_truncate"


@dataclass(frozen=True)
class Capture:
    """One read model's capture on one dialect: what to run to install and remove it."""

    model: str
    create: tuple[str, ...]
    drop: tuple[str, ...]

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256("\n".join(self.create).encode()).hexdigest()[:16]


def capture(model: ReadModel, dialect: Dialect) -> Capture:
    create: list[str] = []
    drop: list[str] = []
    for table_name, mappings in sorted(model.lineage.mappings.items()):
        table = model.lineage.tables[table_name]
        watched = sorted(model.lineage.columns.get(table_name, frozenset()))
        if dialect.name == "sqlite":
            made, dropped = _sqlite_triggers(model.name, table, mappings, watched, dialect)
        elif dialect.name == "postgresql":
            made, dropped = _postgresql_triggers(model.name, table, mappings, watched, dialect)
        else:
            raise NotImplementedError(
                f"change capture supports sqlite and postgresql, not {dialect.name}"
            )
        create += made
        drop += dropped
    return Capture(model.name, tuple(create), tuple(drop))


def install(connection: Connection, models: Iterable[ReadModel]) -> None:
    """Install (or replace) the capture of ``models``, in the caller's transaction."""
    for statement in install_statements(list(models), connection.dialect):
        connection.exec_driver_sql(statement)


def remove(connection: Connection, models: Iterable[ReadModel]) -> None:
    for statement in remove_statements(list(models), connection.dialect):
        connection.exec_driver_sql(statement)


def installed(connection: Connection) -> dict[str, str]:
    """Model name -> fingerprint of the capture installed for it."""
    rows = connection.execute(select(captures.c.model, captures.c.fingerprint))
    return {model: fingerprint for model, fingerprint in rows}


def install_statements(models: Sequence[ReadModel], dialect: Dialect) -> list[str]:
    """Everything to run, in order, as plain SQL (an alembic migration's ``op.execute``)."""
    statements: list[str] = []
    if dialect.name == "postgresql":
        statements.append(_truncate_function())
    for model in models:
        made = capture(model, dialect)
        statements += made.drop
        statements += made.create
        statements += _record(dialect, model.name, made.fingerprint)
    return statements


def remove_statements(models: Sequence[ReadModel], dialect: Dialect) -> list[str]:
    statements: list[str] = []
    for model in models:
        statements += capture(model, dialect).drop
        statements.append(_sql(delete(captures).where(captures.c.model == model.name), dialect))
    return statements


# ---------------------------------------------------------------- the key rows a change makes


def _key_inserts(
    model: str,
    table: Table,
    mappings: Sequence[KeyMapping],
    row: str,
    dialect: Dialect,
    *,
    unless_as_new: bool = False,
) -> list[str]:
    """One ``INSERT INTO cqrs_changes ... SELECT`` per mapping, for the trigger's ``row``
    (``NEW`` or ``OLD``). ``unless_as_new``: the old row's keys only where they differ
    from the new row's (an UPDATE that keeps the key records it once)."""
    statements = []
    for mapping in mappings:
        if mapping.expressions is not None:
            keys: list[Any] = list(mapping.expressions)
            chosen = select(*_captured_columns(model, keys, dialect))
            chosen = chosen.where(and_(*(key.is_not(None) for key in keys)))
            if unless_as_new:
                moved = [key.is_distinct_from(_on_row(key, table, "NEW", dialect)) for key in keys]
                chosen = chosen.where(or_(*moved))
        else:
            assert mapping.select is not None
            found = mapping.select.subquery("cqrs_keys")
            keys = list(found.c)
            chosen = select(*_captured_columns(model, keys, dialect)).distinct()
            chosen = chosen.where(and_(*(key.is_not(None) for key in keys)))
        statement: Insert = insert(changes).from_select(_captured_names(dialect), chosen)
        statements.append(_sql(_on_row(statement, table, row, dialect), dialect))
    return statements


def _captured_names(dialect: Dialect) -> list[str]:
    names = ["model", "key"]
    return [*names, "txid"] if dialect.name == "postgresql" else names


def _captured_columns(model: str, keys: list[Any], dialect: Dialect) -> list[Any]:
    columns: list[Any] = [literal(model)]
    if dialect.name == "postgresql":
        columns.append(cast(func.json_build_array(*keys), Text))
        columns.append(func.txid_current())
    else:
        columns.append(func.json_array(*keys))
    return columns


def _on_row(statement: Any, table: Table, row: str, dialect: Dialect) -> Any:
    """``statement`` with the changed table's columns read from the trigger's row."""
    quote = dialect.identifier_preparer.quote

    def replace(element: Any, **_kw: Any) -> Any:
        if isinstance(element, Column) and base_table(element.table) is table:
            return literal_column(f"{row}.{quote(element.name)}", type_=element.type)
        return None

    return visitors.replacement_traverse(statement, NO_OPTIONS, replace)


def _sql(statement: Any, dialect: Dialect) -> str:
    return str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


# ---------------------------------------------------------------- SQLite


def _sqlite_triggers(
    model: str,
    table: Table,
    mappings: Sequence[KeyMapping],
    watched: list[str],
    dialect: Dialect,
) -> tuple[list[str], list[str]]:
    quote = dialect.identifier_preparer.quote
    target = dialect.identifier_preparer.format_table(table)
    new_rows = _key_inserts(model, table, mappings, "NEW", dialect)
    old_rows = _key_inserts(model, table, mappings, "OLD", dialect)
    moved_rows = _key_inserts(model, table, mappings, "OLD", dialect, unless_as_new=True)
    changed = " OR ".join(f"OLD.{quote(c)} IS NOT NEW.{quote(c)}" for c in watched)
    of_columns = ", ".join(quote(c) for c in watched)
    names = {op: _name(model, table.name, op) for op in ("insert", "update", "delete")}
    create = [
        _sqlite_trigger(names["insert"], f"AFTER INSERT ON {target}", new_rows),
        _sqlite_trigger(
            names["update"],
            f"AFTER UPDATE OF {of_columns} ON {target} FOR EACH ROW WHEN {changed}",
            new_rows + moved_rows,
        ),
        _sqlite_trigger(names["delete"], f"AFTER DELETE ON {target}", old_rows),
    ]
    drop = [f"DROP TRIGGER IF EXISTS {quote(name)}" for name in names.values()]
    return create, drop


def _sqlite_trigger(name: str, when: str, body: list[str]) -> str:
    statements = "".join(f"\n    {statement};" for statement in body)
    return f'CREATE TRIGGER "{name}" {when}\nBEGIN{statements}\nEND'


# ---------------------------------------------------------------- PostgreSQL


def _postgresql_triggers(
    model: str,
    table: Table,
    mappings: Sequence[KeyMapping],
    watched: list[str],
    dialect: Dialect,
) -> tuple[list[str], list[str]]:
    quote = dialect.identifier_preparer.quote
    target = dialect.identifier_preparer.format_table(table)
    function = quote(_name(model, table.name, "capture"))
    new_rows = _plpgsql(_key_inserts(model, table, mappings, "NEW", dialect))
    old_rows = _plpgsql(_key_inserts(model, table, mappings, "OLD", dialect))
    moved_rows = _plpgsql(_key_inserts(model, table, mappings, "OLD", dialect, unless_as_new=True))
    changed = " OR ".join(f"OLD.{quote(c)} IS DISTINCT FROM NEW.{quote(c)}" for c in watched)
    of_columns = ", ".join(quote(c) for c in watched)
    names = {op: quote(_name(model, table.name, op)) for op in ("row", "update", "truncate")}
    create = [
        f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $cqrs$\n"
        "BEGIN\n"
        f"    IF TG_OP = 'INSERT' THEN{new_rows}\n"
        f"    ELSIF TG_OP = 'UPDATE' THEN{new_rows}{moved_rows}\n"
        f"    ELSE{old_rows}\n    END IF;\n"
        "    RETURN NULL;\n"
        "END\n$cqrs$",
        f"CREATE TRIGGER {names['row']} AFTER INSERT OR DELETE ON {target} "
        f"FOR EACH ROW EXECUTE FUNCTION {function}()",
        f"CREATE TRIGGER {names['update']} AFTER UPDATE OF {of_columns} ON {target} "
        f"FOR EACH ROW WHEN ({changed}) EXECUTE FUNCTION {function}()",
        f"CREATE TRIGGER {names['truncate']} AFTER TRUNCATE ON {target} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {TRUNCATE_FUNCTION}({_string(model)})",
    ]
    drop = [f"DROP TRIGGER IF EXISTS {name} ON {target}" for name in names.values()]
    drop.append(f"DROP FUNCTION IF EXISTS {function}()")
    return create, drop


def _plpgsql(statements: list[str]) -> str:
    return "".join(f"\n        {statement};" for statement in statements)


def _truncate_function() -> str:
    """A TRUNCATE fires no row trigger: it changes every key of the model (a NULL key)."""
    return (
        f"CREATE OR REPLACE FUNCTION {TRUNCATE_FUNCTION}() RETURNS trigger "
        "LANGUAGE plpgsql AS $cqrs$\n"
        "BEGIN\n"
        "    INSERT INTO cqrs_changes (model, key, txid)\n"
        "    VALUES (TG_ARGV[0], NULL, txid_current());\n"
        "    RETURN NULL;\n"
        "END\n$cqrs$"
    )


# ---------------------------------------------------------------- names and records


def _name(model: str, table: str, op: str) -> str:
    """``cqrs_capture__<model>__<table>__<op>``, shortened with a hash past 63 characters."""
    name = f"cqrs_capture__{model}__{table}__{op}"
    if len(name) <= MAX_IDENTIFIER:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: MAX_IDENTIFIER - len(op) - 11]}_{digest}__{op}"


def _string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _record(dialect: Dialect, model: str, fingerprint: str) -> list[str]:
    now = datetime.now(UTC).replace(tzinfo=None)
    return [
        _sql(delete(captures).where(captures.c.model == model), dialect),
        _sql(
            insert(captures).values(model=model, fingerprint=fingerprint, installed_at=now),
            dialect,
        ),
    ]


def decode_key(key: str | None) -> list[Any] | None:
    """A captured key (a JSON array), or None for "every key"."""
    return None if key is None else list(json.loads(key))


class CaptureStatus:
    """Which read models have their current capture installed, as this process last saw
    (``cqrs_captures``, re-read at most every ``ttl`` seconds: capture changes with a
    migration, not per request)."""

    CURRENT = "current"
    OUTDATED = "outdated"  # installed from an older declaration: run a migration
    MISSING = "missing"

    def __init__(
        self,
        engine: Engine,
        models: Callable[[], Mapping[str, ReadModel]],
        *,
        ttl: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._models = models
        self._ttl = ttl
        self._clock = clock
        self._known: dict[str, str] = {}
        self._expires = -1.0
        self._lock = threading.Lock()

    def states(self, *, fresh: bool = False) -> dict[str, str]:
        """Model name -> current | outdated | missing (``fresh``: read now, for a decision
        that is rare and must not be stale, like a promotion)."""
        if fresh or self._clock() >= self._expires:
            with self._lock:
                if fresh or self._clock() >= self._expires:
                    self._known = self._read()
                    self._expires = self._clock() + self._ttl
        return self._known

    def kept(self, name: str, *, fresh: bool = False) -> bool:
        return self.states(fresh=fresh).get(name) == self.CURRENT

    def _read(self) -> dict[str, str]:
        try:
            with self._engine.connect() as connection:
                found = installed(connection)
        except SQLAlchemyError:  # no cqrs_captures table (yet): nothing is captured
            found = {}
        dialect = self._engine.dialect
        states = {}
        for name, model in self._models().items():
            if name not in found:
                states[name] = self.MISSING
            elif found[name] == fingerprint(model, dialect):
                states[name] = self.CURRENT
            else:
                states[name] = self.OUTDATED
        return states


@functools.cache
def fingerprint(model: ReadModel, dialect: Dialect) -> str:
    """Cached: generating the triggers compiles every query of the lineage."""
    return capture(model, dialect).fingerprint
