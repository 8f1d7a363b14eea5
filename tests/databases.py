"""Which database backends the suite runs on, and throwaway databases on them.

SQLite always runs. PostgreSQL runs when ``TEST_POSTGRES_URL`` names a server (an admin
URL such as ``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``) and always under
``CI=true``, where an unreachable server is a failure, never a skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, MetaData, create_engine, text
from sqlalchemy.engine import make_url

from cqrs_layer import allow_unguarded_writes
from cqrs_layer.core.tables import captures, changes

CI_DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def postgres_admin_url() -> str | None:
    url = os.environ.get("TEST_POSTGRES_URL")
    if url:
        return url
    if os.environ.get("CI", "").lower() == "true":
        return CI_DEFAULT_POSTGRES_URL
    return None


def backends() -> list[str]:
    return ["sqlite", "postgresql"] if postgres_admin_url() else ["sqlite"]


@contextmanager
def temporary_postgres_database(prefix: str = "cqrs_test") -> Iterator[str]:
    """Create a uniquely named database, yield its URL, drop it afterwards."""
    admin_url = postgres_admin_url()
    if admin_url is None:
        raise RuntimeError("no PostgreSQL configured (set TEST_POSTGRES_URL)")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def empty_tables(engine: Engine, metadatas: Iterable[MetaData]) -> None:
    """Delete every row and restart ids, so known-data tests see ids 1, 2, 3...

    Not ``cqrs_captures``: it says which capture triggers are installed, and they stay;
    and what the emptying itself recorded in ``cqrs_changes`` is emptied after it. Only
    the tables holding rows are emptied: on PostgreSQL a TRUNCATE costs per table, and a
    test touches a handful of the thirty.
    """
    tables = [
        t for metadata in metadatas for t in reversed(metadata.sorted_tables) if t is not captures
    ]
    with allow_unguarded_writes(), engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            probe = " UNION ALL ".join(
                f"SELECT '{t.name}' WHERE EXISTS (SELECT 1 FROM \"{t.name}\")" for t in tables
            )
            used = [row[0] for row in conn.execute(text(probe))]
            if used:
                names = ", ".join(f'"{name}"' for name in used)
                conn.execute(text(f"TRUNCATE {names} CASCADE"))
            # Every sequence a test advanced, even by an insert that was rolled back.
            conn.execute(
                text(
                    "SELECT setval(format('%I.%I', schemaname, sequencename), 1, false)"
                    " FROM pg_sequences WHERE last_value IS NOT NULL"
                )
            )
        else:
            for table in tables:
                conn.execute(table.delete())
        conn.execute(changes.delete())
