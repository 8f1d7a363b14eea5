"""What every process learned of writers, in the database (``cqrs_writers``)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError

from ..core.sql import insert_if_absent
from ..core.tables import writers


class WriterLog:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def record(self, endpoint: str, table: str, inside_command: bool) -> None:
        now = datetime.now(UTC).replace(tzinfo=None)
        with self._engine.begin() as connection:
            insert_if_absent(
                connection,
                writers,
                {
                    "endpoint": endpoint,
                    "table_name": table,
                    "inside_command": inside_command,
                    "first_seen": now,
                },
            )

    def learned(self) -> dict[str, frozenset[str]]:
        """Endpoint -> tables it was seen writing (inside or outside commands)."""
        try:
            with self._engine.connect() as connection:
                rows = connection.execute(select(writers.c.endpoint, writers.c.table_name))
                found: dict[str, set[str]] = {}
                for endpoint, table in rows:
                    found.setdefault(endpoint, set()).add(table)
        except SQLAlchemyError:  # no cqrs_writers table yet: nothing learned
            return {}
        return {endpoint: frozenset(tables) for endpoint, tables in found.items()}
