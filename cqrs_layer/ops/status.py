"""An app's migration at a glance, as one document: ``flask cqrs status`` prints it.

What an operator asks first, in this order: which database is this, is it migrated, where
is each endpoint and what keeps it from its next stage, is each read model current and
how is it kept so, which requests fell back and why, and did anything name an endpoint
the app does not serve. Nothing here judges on its own: what blocks an endpoint is the
promotion gate's verdict (:meth:`~cqrs_layer.rollout.gate.Gate.blockers`), with each read
model verified once for all the endpoints that need it. Verify results are not stored:
``verified`` shows what this run verified for the gate, else nothing.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import Connection, func, inspect, select

from ..core.database import MIGRATE, missing_tables, shown, tables_missing, unreachable
from ..core.read_model import ReadModel
from ..core.tables import flags
from ..read.capture import CaptureStatus
from ..read.refresh import pending_counts
from ..read.verify import VerifyReport
from ..rollout.flags import FlagState
from ..rollout.history import STALE
from ..rollout.stages import GATED_STAGES, next_step
from .context import Toolkit

FALLBACK_REASONS = 5  # the commonest; the comparison history has every one


def app_status(app: Flask, toolkit: Toolkit) -> dict[str, Any]:
    """The document. When the database cannot be reached it holds only ``database``, with
    its ``problem``; when the toolkit's tables are missing, ``toolkit_tables.problem`` says
    so and the rest shows what the app serves without them (the settings)."""
    engine = toolkit.engine
    problem = unreachable(engine)
    database = {"url": shown(engine.url), "problem": problem}
    if problem:
        return {"database": database}
    with engine.connect() as connection:
        missing = missing_tables(connection)
        migrated = not missing
        verified: dict[str, VerifyReport] = {}
        endpoints = [
            _endpoint(toolkit, flag, verified, migrated=migrated)
            for flag in _flags(toolkit, migrated=migrated)
        ]
        read_models = _read_models(connection, toolkit, verified, migrated=migrated)
        not_found = _not_found(app, toolkit, connection, migrated=migrated)
    return {
        "database": database,
        "toolkit_tables": {
            "missing": missing,
            "problem": tables_missing(engine.url, missing) if missing else None,
            "fix": MIGRATE if missing else None,
        },
        "endpoints": endpoints,
        "read_models": read_models,
        "not_found": not_found,
    }


def _flags(toolkit: Toolkit, *, migrated: bool) -> list[FlagState]:
    if migrated:
        return toolkit.flags.all()
    # No flags table: every endpoint is served as the settings say.
    return [toolkit.flags.settings_state(name) for name in sorted(toolkit.registry.endpoints)]


def _endpoint(
    toolkit: Toolkit, flag: FlagState, verified: dict[str, VerifyReport], *, migrated: bool
) -> dict[str, Any]:
    step = next_step(flag.kind, flag.stage, flag.percent)
    gated = step is not None and flag.kind == "read" and step[0] in GATED_STAGES
    blockers: list[dict[str, str]] | None = None  # None: not judged (no toolkit tables)
    if migrated:
        found = toolkit.gate.blockers(flag.endpoint, verified=verified) if gated else []
        blockers = [blocker.to_dict() for blocker in found]
    return {
        **flag.to_dict(),
        "next": None if step is None else {"stage": step[0], "percent": step[1]},
        "blockers": blockers,
        "fallbacks": _fallbacks(toolkit, flag.endpoint) if migrated else None,
    }


def _fallbacks(toolkit: Toolkit, endpoint: str) -> dict[str, Any]:
    """Requests served by legacy because the new path failed (with why), and those served
    by legacy because the read model had changes pending (``stale``: not a failure)."""
    stats = toolkit.history.stats(
        endpoint, window_size=toolkit.settings.comparison_window, last_diffs=0
    )
    reasons = dict(list(stats.fallback_reasons.items())[:FALLBACK_REASONS])
    return {"count": stats.fallbacks, "reasons": reasons, "stale": stats.outcomes.get(STALE, 0)}


def _read_models(
    connection: Connection,
    toolkit: Toolkit,
    verified: dict[str, VerifyReport],
    *,
    migrated: bool,
) -> list[dict[str, Any]]:
    tables = set(inspect(connection).get_table_names())
    pending = pending_counts(connection) if migrated else {}
    captures = toolkit.captures.states(fresh=True)
    projected = _projected(toolkit)
    found = []
    for name, model in sorted(toolkit.registry.read_models.items()):
        capture = captures.get(name, CaptureStatus.MISSING)
        kept_by = ["refresh-by-key"] if capture == CaptureStatus.CURRENT else []
        kept_by += [f"projection {each}" for each in projected.get(name, [])]
        found.append(
            {
                "name": name,
                "table": model.table.name,
                "rows": _rows(connection, model) if model.table.name in tables else None,
                "pending_changes": pending.get(name, 0) if migrated else None,
                "capture": capture,
                "kept_by": kept_by,
                "verified": _verified(verified.get(name)),
            }
        )
    return found


def _projected(toolkit: Toolkit) -> dict[str, list[str]]:
    """Read model -> the hand-written projections that keep it, when they run."""
    if not toolkit.settings.inline_projections:
        return {}
    found: dict[str, list[str]] = {}
    for name, projection in sorted(toolkit.projections.projections.items()):
        for model in projection.read_models:
            found.setdefault(model.name, []).append(name)
    return found


def _rows(connection: Connection, model: ReadModel) -> int:
    return int(connection.scalar(select(func.count()).select_from(model.table)) or 0)


def _verified(report: VerifyReport | None) -> dict[str, Any] | None:
    if report is None:
        return None
    return {"ok": report.ok, "drift": len(report.drift), "behind": len(report.behind)}


def _not_found(
    app: Flask, toolkit: Toolkit, connection: Connection, *, migrated: bool
) -> list[dict[str, Any]]:
    """Endpoints named somewhere (wrapped, in ``CQRS_ENDPOINT_STAGES``, in a stored flag)
    that no URL rule of the app serves: a typo, or a flag a renamed endpoint left."""
    served = {rule.endpoint for rule in app.url_map.iter_rules()}
    declared: dict[str, list[str]] = {}
    for name in toolkit.registry.endpoints:
        declared.setdefault(name, []).append("wrapped")
    for name in toolkit.settings.endpoint_stages:
        declared.setdefault(name, []).append("CQRS_ENDPOINT_STAGES")
    if migrated:
        for name in connection.scalars(select(flags.c.endpoint)):
            declared.setdefault(name, []).append("cqrs_flags")
    return [
        {"endpoint": name, "declared_in": where}
        for name, where in sorted(declared.items())
        if name not in served
    ]
