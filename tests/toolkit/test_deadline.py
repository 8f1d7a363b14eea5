"""The read path's time budget is enforced by the database, and only for the read path."""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, Engine

from cqrs_layer.rollout.deadline import Deadline, DeadlineExceeded, enforced

from .helpers import run_slow_sql


def statement_timeout(connection: Connection) -> str:
    return str(connection.exec_driver_sql("SHOW statement_timeout").scalar_one())


def test_a_query_past_the_budget_is_stopped_by_the_database(engine: Engine) -> None:
    """The query would run for a minute (PostgreSQL) or far longer (SQLite): the test
    finishing with DeadlineExceeded, a database error raised past the budget, is the
    proof it was stopped rather than waited for."""
    with (
        engine.connect() as connection,
        pytest.raises(DeadlineExceeded) as exceeded,
        enforced(connection, Deadline(200)),
    ):
        run_slow_sql(connection)

    assert exceeded.value.budget_ms == 200
    assert str(exceeded.value).endswith("(budget 200 ms)")
    assert exceeded.value.__cause__ is not None  # the database's own error, stopped there


def test_within_the_budget_the_answer_is_kept(engine: Engine) -> None:
    with engine.connect() as connection, enforced(connection, Deadline(600_000)) as deadline:
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
            # A budget already spent: a handler left behind would interrupt the query below.
            with enforced(connection, Deadline(0)) as spent:
                assert spent.expired()
            counted = connection.exec_driver_sql(
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c"
                " WHERE x < 200000) SELECT count(*) FROM c"
            ).scalar_one()
            assert counted == 200_000
