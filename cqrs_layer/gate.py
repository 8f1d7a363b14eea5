"""The promotion gate: may this read endpoint start serving its read models?

Moving a read endpoint to ``live`` or ``complete`` is refused while
- ``verify`` finds its read models drifting from their source tables,
- its recent comparisons show mismatches, or
- a write endpoint that writes those source tables is not fully on ``command``: its
  writes would change the source without events, so the read models would drift again.

The endpoint → read models link is declared (``query_endpoint(read_models=[...])``;
undeclared means "every registered read model", the safe guess). The write endpoint →
tables link is declared (``command_endpoint(writes=[...])``) or learned by the write
guard; a write endpoint with neither is assumed to write anything, so it blocks until it
is on ``command`` or declares its tables.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine

from . import comparisons
from .errors import CommandRejected
from .guard import NO_REQUEST
from .readmodel import ReadModel
from .rollout import COMMAND
from .verify import verify

if TYPE_CHECKING:
    from .ext import CQRSState
    from .flags import FlagState

StageLookup = Callable[[Connection, str], "FlagState"]
DEFAULT_WINDOW = 100


@dataclass(frozen=True, slots=True)
class Blocker:
    """One reason a promotion is refused. ``subject`` is the read model or endpoint."""

    kind: str  # drift | mismatches | legacy-writer | unknown-read-model
    subject: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "subject": self.subject, "message": self.message}


class PromotionRefused(CommandRejected):
    status, code = 409, "promotion_refused"

    def __init__(self, endpoint: str, stage: str, blockers: list[Blocker]) -> None:
        self.blockers = blockers
        reasons = "; ".join(blocker.message for blocker in blockers)
        super().__init__(
            f"refused to move {endpoint} to {stage}: {reasons} "
            "(fix these, or force the change with a reason)",
            fields=[{"field": "stage", "reason": blocker.message} for blocker in blockers],
        )

    @property
    def blocking_endpoints(self) -> list[str]:
        return [b.subject for b in self.blockers if b.kind == "legacy-writer"]

    def to_dict(self) -> dict[str, Any]:
        body = super().to_dict()
        body["error"]["blockers"] = [blocker.to_dict() for blocker in self.blockers]
        return body


def check_promotion(
    state: CQRSState, engine: Engine, endpoint: str, stage: str, stage_of: StageLookup
) -> None:
    """Raise :class:`PromotionRefused` naming every blocker, else return."""
    found = blockers(state, engine, endpoint, stage_of)
    if found:
        raise PromotionRefused(endpoint, stage, found)


def blockers(
    state: CQRSState, engine: Engine, endpoint: str, stage_of: StageLookup
) -> list[Blocker]:
    models, found = _read_models_of(state, endpoint)
    for model in models:
        report = verify(engine, model)
        if not report.ok:
            found.append(
                Blocker(
                    "drift",
                    model.name,
                    f"read model {model.name} drifts from its source "
                    f"(missing {len(report.missing)}, extra {len(report.extra)}, "
                    f"different {len(report.different)}; run flask cqrs verify --repair)",
                )
            )
    size = int(state.app.config.get("CQRS_DEMOTION_WINDOW", DEFAULT_WINDOW))
    with engine.connect() as connection:
        recent = comparisons.window(connection, endpoint, size)
        if recent.mismatches:
            found.append(
                Blocker(
                    "mismatches",
                    endpoint,
                    f"{recent.mismatches} of the last {recent.samples} comparisons of "
                    f"{endpoint} mismatched (see flask cqrs report)",
                )
            )
        sources = frozenset().union(*(model.depends_on for model in models))
        for writer, tables in sorted(writers_of(state, sources).items()):
            found.extend(_writer_blockers(state, connection, writer, tables, stage_of))
    return found


def writers_of(state: CQRSState, tables: Iterable[str]) -> dict[str, frozenset[str] | None]:
    """Write endpoints that write (or may write: ``None``) any of ``tables``."""
    wanted = frozenset(tables)
    learned: dict[str, set[str]] = {}
    for source in (state.guard.writers(), state.guard.command_writers()):
        for name, written in source.items():
            if name != NO_REQUEST:
                learned.setdefault(name, set()).update(written)
    found: dict[str, frozenset[str] | None] = {}
    for name, wrapped in state.endpoints.items():
        if wrapped.kind != "write":
            continue
        known = set(wrapped.writes) | learned.get(name, set())
        if not known:
            found[name] = None
        elif known & wanted:
            found[name] = frozenset(known & wanted)
    for name, tables_written in learned.items():
        if name not in state.endpoints and tables_written & wanted:
            found[name] = frozenset(tables_written & wanted)
    return found


def _writer_blockers(
    state: CQRSState,
    connection: Connection,
    writer: str,
    tables: frozenset[str] | None,
    stage_of: StageLookup,
) -> list[Blocker]:
    what = "may write its source tables (declare writes=[...])"
    if tables is not None:
        what = f"writes {', '.join(sorted(tables))}"
    if writer not in state.endpoints:
        message = f"endpoint {writer} {what} outside a command and has no command path"
        return [Blocker("legacy-writer", writer, message)]
    flag = stage_of(connection, writer)
    if flag.stage != COMMAND:
        message = f"write endpoint {writer} {what} and is still on {flag.stage}"
        return [Blocker("legacy-writer", writer, message)]
    if flag.percent < 100.0:
        message = f"write endpoint {writer} {what} and is on command for only {flag.percent:g}%"
        return [Blocker("legacy-writer", writer, message)]
    return []


def _read_models_of(state: CQRSState, endpoint: str) -> tuple[list[ReadModel], list[Blocker]]:
    declared = state.endpoints[endpoint].read_models
    if not declared:
        return [state.read_models[name] for name in sorted(state.read_models)], []
    models: list[ReadModel] = []
    unknown: list[Blocker] = []
    for name in declared:
        model = state.read_models.get(name)
        if model is None:
            unknown.append(
                Blocker("unknown-read-model", name, f"read model {name} is not registered")
            )
        else:
            models.append(model)
    return models, unknown
