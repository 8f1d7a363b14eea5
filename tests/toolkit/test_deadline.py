"""The read path's time budget is enforced by the database, and only for the read path."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, Engine, create_engine

from cqrs_layer.deadline import Deadline, DeadlineExceeded, enforced

SLOW_SQLITE = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000)"
    " SELECT count(*) FROM c"
)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


def run_slow_query(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SELECT pg_sleep(5)")
    else:
        connection.exec_driver_sql(SLOW_SQLITE)


def statement_timeout(connection: Connection) -> str:
    return str(connection.exec_driver_sql("SHOW statement_timeout").scalar_one())


def test_a_query_past_the_budget_is_stopped_by_the_database(engine: Engine) -> None:
    started = time.perf_counter()
    with (
        engine.connect() as connection,
        pytest.raises(DeadlineExceeded),
        enforced(connection, Deadline(200)),
    ):
        run_slow_query(connection)

    assert time.perf_counter() - started < 3  # stopped, not waited for


def test_within_the_budget_the_answer_is_kept(engine: Engine) -> None:
    with engine.connect() as connection, enforced(connection, Deadline(5_000)) as deadline:
        assert connection.exec_driver_sql("SELECT 41 + 1").scalar_one() == 42

    assert not deadline.expired()


def test_the_limit_ends_with_the_read_path(engine: Engine) -> None:
    """PostgreSQL: the limit is not reset eagerly (a round trip per read); a later statement
    in the same transaction still gets the usual limit back, and so does the next
    transaction on the same pooled connection. SQLite: the progress handler is removed."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            usual = statement_timeout(connection)
            connection.rollback()
            with enforced(connection, Deadline(60_000)):
                assert statement_timeout(connection) not in (usual, "0")
            assert statement_timeout(connection) == usual  # same transaction, later statement
            with enforced(connection, Deadline(60_000)):
                pass
            connection.rollback()
        with engine.connect() as connection:  # the same pooled connection, a new transaction
            assert statement_timeout(connection) == usual
    else:
        with engine.connect() as connection:
            with enforced(connection, Deadline(50)):
                pass
            time.sleep(0.1)  # past the budget: a handler left behind would interrupt this
            counted = connection.exec_driver_sql(
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c"
                " WHERE x < 200000) SELECT count(*) FROM c"
            ).scalar_one()
            assert counted == 200_000
