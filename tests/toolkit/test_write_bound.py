"""A write transaction's bounded waits (``bound_transaction``) last exactly as long as the
transaction: the pooled connection goes back as it was, and a shorter bound taken inside
it (a read model's refresh) gives the write's own bound back, not the server's default."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, Engine, create_engine

from cqrs_layer.core.sql import bound_transaction, bound_waits, unbound_waits


@pytest.fixture
def one_connection(database_url: str) -> Iterator[Engine]:
    """An engine whose pool holds one connection: every checkout is the same one."""
    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    yield engine
    engine.dispose()


def waits(connection: Connection) -> tuple[str, ...]:
    """How long the connection's statements may wait, as the database says."""
    if connection.dialect.name == "postgresql":
        return tuple(
            str(connection.exec_driver_sql(f"SHOW {name}").scalar_one())
            for name in ("lock_timeout", "statement_timeout")
        )
    return (str(connection.exec_driver_sql("PRAGMA busy_timeout").scalar_one()),)


def bound(connection: Connection, ms: int) -> tuple[str, ...]:
    return (f"{ms}ms", f"{ms}ms") if connection.dialect.name == "postgresql" else (str(ms),)


@pytest.mark.parametrize("end", ["commit", "rollback"])
def test_the_bound_lasts_for_the_transaction_only(one_connection: Engine, end: str) -> None:
    with one_connection.connect() as connection:
        default = waits(connection)
        connection.rollback()

    with one_connection.connect() as connection:
        connection.begin()
        bound_transaction(connection, 250)
        assert waits(connection) == bound(connection, 250)
        bound_waits(connection, 40)  # a refresh inside the write, with its own bound
        # (SQLite takes none: a writing transaction holds the only lock there is.)
        inner = 40 if connection.dialect.name == "postgresql" else 250
        assert waits(connection) == bound(connection, inner)
        unbound_waits(connection)
        assert waits(connection) == bound(connection, 250)
        getattr(connection, end)()
        assert waits(connection) == default

    with one_connection.connect() as connection:
        assert waits(connection) == default


def test_without_a_transaction_bound_unbound_waits_restores_the_defaults(
    one_connection: Engine,
) -> None:
    with one_connection.connect() as connection:
        default = waits(connection)
        connection.rollback()
        connection.begin()
        bound_waits(connection, 40)
        unbound_waits(connection)
        assert waits(connection) == default
