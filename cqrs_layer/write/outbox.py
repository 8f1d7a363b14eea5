"""Writing domain events to the outbox table, and reading them back in order."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert

from ..core.messages import Event, StoredEvent
from ..core.tables import outbox

#: Built once: a statement object memoizes its cache key, so reusing it skips rebuilding
#: the construct and its key on every command.
_INSERT_RETURNING_POSITION = insert(outbox).returning(outbox.c.position)


def append(
    connection: Connection, events: Iterable[Event], *, correlation_id: str | None = None
) -> list[StoredEvent]:
    """Insert events in order, in the caller's transaction; returns them with positions.

    One INSERT per event so each gets its position back portably (SQLite's RETURNING with
    executemany does not promise order).
    """
    stored = []
    now = datetime.now(UTC)
    for event in events:
        row: dict[str, Any] = {
            "event_id": str(uuid.uuid4()),
            "event_type": event.event_type,
            "aggregate_type": event.aggregate_type or type(event).__name__,
            "aggregate_id": event.aggregate_id,
            "payload": event.payload(),
            "occurred_at": now.replace(tzinfo=None),
            "correlation_id": correlation_id,
        }
        position = connection.execute(_INSERT_RETURNING_POSITION, row).scalar_one()
        stored.append(StoredEvent(position=position, **{**row, "occurred_at": now}))
    return stored
