"""What comparisons leave behind: a bounded history table and its statistics.

Every comparison (and every fallback, which is a failed new path) is one row of
``cqrs_comparisons``. The history is bounded per endpoint (the oldest rows beyond
``CQRS_COMPARISON_HISTORY`` are pruned on insert), so it never grows without limit; the
readiness rule, the report and the automatic demotion read their numbers from it, so
every process agrees.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, select

from ..core.tables import comparisons

MATCH = "match"
MISMATCH = "mismatch"
ERROR = "error"  # a path raised (after the app's error handlers had their say)
TIMEOUT = "timeout"  # a path exceeded its time budget
FALLBACK = "fallback"  # live: the new path failed, the legacy answer was served
#: Not judgements of the read model, so readiness and demotion leave them out:
STALE = "stale"  # its read models had changes not yet applied: legacy served, not compared
CHANGED = "changed"  # the answers differed, but the data changed between them (re-run agreed)
NOT_JUDGED = (STALE, CHANGED)
MAX_ERROR_CHARS = 500


@dataclass(frozen=True, slots=True)
class ComparisonResult:
    endpoint: str
    stage: str
    served_by: str
    outcome: str
    method: str
    path: str
    legacy_status: int | None = None
    new_status: int | None = None
    legacy_ms: float | None = None
    new_ms: float | None = None
    legacy_error: str | None = None
    new_error: str | None = None
    diff: dict[str, Any] | None = None


def record(connection: Connection, row: ComparisonResult, history_limit: int) -> None:
    """Insert ``row`` and prune the endpoint's history to its newest ``history_limit`` rows."""
    connection.execute(
        comparisons.insert().values(
            endpoint=row.endpoint,
            at=datetime.now(UTC).replace(tzinfo=None),
            stage=row.stage,
            served_by=row.served_by,
            outcome=row.outcome,
            method=row.method[:10],
            path=row.path[:2000],
            legacy_status=row.legacy_status,
            new_status=row.new_status,
            legacy_ms=row.legacy_ms,
            new_ms=row.new_ms,
            legacy_error=_clip(row.legacy_error),
            new_error=_clip(row.new_error),
            diff=row.diff,
        )
    )
    oldest_kept = connection.scalar(
        select(comparisons.c.id)
        .where(comparisons.c.endpoint == row.endpoint)
        .order_by(comparisons.c.id.desc())
        .offset(history_limit - 1)
        .limit(1)
    )
    if oldest_kept is not None:
        connection.execute(
            comparisons.delete().where(
                comparisons.c.endpoint == row.endpoint, comparisons.c.id < oldest_kept
            )
        )


@dataclass(frozen=True, slots=True)
class Window:
    """The newest comparisons of one endpoint: what readiness and demotion judge."""

    samples: int
    mismatches: int
    new_errors: int
    legacy_errors: int

    @property
    def mismatch_rate(self) -> float:
        return self.mismatches / self.samples if self.samples else 0.0

    @property
    def error_rate(self) -> float:
        return self.new_errors / self.samples if self.samples else 0.0


def window(
    connection: Connection,
    endpoint: str,
    size: int,
    *,
    stage: str | None = None,
    since: datetime | None = None,
) -> Window:
    """Counts over the newest ``size`` rows of ``endpoint`` (only those recorded in
    ``stage`` and at or after ``since``, when given)."""
    query = select(
        comparisons.c.outcome, comparisons.c.new_error, comparisons.c.legacy_error
    ).where(comparisons.c.endpoint == endpoint, comparisons.c.outcome.not_in(NOT_JUDGED))
    if stage is not None:
        query = query.where(comparisons.c.stage == stage)
    if since is not None:
        query = query.where(comparisons.c.at >= since)
    rows = connection.execute(query.order_by(comparisons.c.id.desc()).limit(size)).all()
    return Window(
        samples=len(rows),
        mismatches=sum(1 for row in rows if row.outcome == MISMATCH),
        new_errors=sum(1 for row in rows if row.new_error is not None),
        legacy_errors=sum(1 for row in rows if row.legacy_error is not None),
    )


@dataclass(frozen=True, slots=True)
class EndpointStats:
    """One endpoint's history in numbers, for ``flask cqrs report``."""

    endpoint: str
    samples: int
    window: Window
    outcomes: dict[str, int]
    legacy_p50_ms: float | None
    legacy_p95_ms: float | None
    new_p50_ms: float | None
    new_p95_ms: float | None
    legacy_errors: int
    new_errors: int
    fallbacks: int
    #: Why the new path failed, with how many fallbacks each reason caused, most first.
    fallback_reasons: dict[str, int] = field(default_factory=dict)
    last_diffs: list[dict[str, Any]] = field(default_factory=list)


def endpoint_stats(
    connection: Connection, endpoint: str, *, window_size: int, last_diffs: int
) -> EndpointStats:
    rows = connection.execute(
        select(
            comparisons.c.at,
            comparisons.c.outcome,
            comparisons.c.method,
            comparisons.c.path,
            comparisons.c.legacy_ms,
            comparisons.c.new_ms,
            comparisons.c.legacy_error,
            comparisons.c.new_error,
            comparisons.c.diff,
        )
        .where(comparisons.c.endpoint == endpoint)
        .order_by(comparisons.c.id.desc())
    ).all()
    outcomes: dict[str, int] = {}
    for row in rows:
        outcomes[row.outcome] = outcomes.get(row.outcome, 0) + 1
    legacy_ms = [row.legacy_ms for row in rows if row.legacy_ms is not None]
    # A fallback's new_ms is the time wasted before giving up, not a served latency.
    new_ms = [row.new_ms for row in rows if row.new_ms is not None and row.new_error is None]
    diffs = [
        {
            "at": row.at.isoformat(timespec="seconds"),
            "request": f"{row.method} {row.path}",
            "entries": (row.diff or {}).get("entries", []),
            "truncated": bool((row.diff or {}).get("truncated", False)),
        }
        for row in rows
        if row.outcome == MISMATCH
    ][:last_diffs]
    return EndpointStats(
        endpoint=endpoint,
        samples=len(rows),
        window=window(connection, endpoint, window_size),
        outcomes=outcomes,
        legacy_p50_ms=percentile(legacy_ms, 50),
        legacy_p95_ms=percentile(legacy_ms, 95),
        new_p50_ms=percentile(new_ms, 50),
        new_p95_ms=percentile(new_ms, 95),
        legacy_errors=sum(1 for row in rows if row.legacy_error is not None),
        new_errors=sum(1 for row in rows if row.new_error is not None),
        fallbacks=outcomes.get(FALLBACK, 0),
        fallback_reasons=dict(
            Counter(row.new_error or "?" for row in rows if row.outcome == FALLBACK).most_common()
        ),
        last_diffs=diffs,
    )


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile (a value that was observed), None without values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def _clip(text: str | None) -> str | None:
    if text is None or len(text) <= MAX_ERROR_CHARS:
        return text
    return text[: MAX_ERROR_CHARS - 1] + "…"


class ComparisonHistory:
    """The history of one app's comparisons, on its database."""

    def __init__(self, engine: Engine, keep: int) -> None:
        self._engine = engine
        self._keep = keep

    def record(self, row: ComparisonResult) -> None:
        with self._engine.begin() as connection:
            record(connection, row, self._keep)

    def window(
        self,
        endpoint: str,
        size: int,
        *,
        stage: str | None = None,
        since: datetime | None = None,
    ) -> Window:
        with self._engine.connect() as connection:
            return window(connection, endpoint, size, stage=stage, since=since)

    def stats(self, endpoint: str, *, window_size: int, last_diffs: int) -> EndpointStats:
        with self._engine.connect() as connection:
            return endpoint_stats(
                connection, endpoint, window_size=window_size, last_diffs=last_diffs
            )
