"""Conditional writes: a write that names the version it expects (HTTP ``If-Match``).

The check runs inside the write transaction, on the row the write is about to change, so
it sees the version the write will overwrite. A concurrent writer that commits between
this check and the UPDATE is still caught: the ORM's ``version_id_col`` makes that UPDATE
match no row (a 409 ``concurrency_conflict``).
"""

from __future__ import annotations

from ..errors import PreconditionFailed

#: The versions a conditional write accepts; ``None``: no condition (no If-Match, or "*").
ExpectedVersions = frozenset[int] | None

IF_MATCH = "If-Match"


def require_version(resource: str, current: int, expected: ExpectedVersions) -> None:
    """Refuse the write (412) unless ``current`` is one of the ``expected`` versions."""
    if expected is None or current in expected:
        return
    raise PreconditionFailed(
        f'{resource} has changed: its ETag is now "{current}", which If-Match does not name;'
        " reload it and try again",
        field=IF_MATCH,
    )
