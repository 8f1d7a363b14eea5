"""Which database backends the suite runs on, and throwaway databases on them.

SQLite always runs. PostgreSQL runs when ``TEST_POSTGRES_URL`` names a server (an admin
URL such as ``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``) and always under
``CI=true``, where an unreachable server is a failure, never a skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

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
