"""The promotion gate: may this read endpoint start serving its read models?

Moving a read endpoint to ``live`` or ``complete`` (or widening its percentage there) is
refused while
- ``verify`` finds its read models drifting from their source tables,
- it is not ready by :mod:`cqrs_layer.rollout.readiness` (too few comparisons, or any
  mismatch or error among the newest), or
- one of its read models is kept by hand-written projections alone (no change capture
  installed) and a write endpoint that writes its source tables is not fully on
  ``command``: those writes change the source without events, so it would drift again.
  Read models with change capture are kept exact whatever writes them: their writers
  need not move first (:meth:`Gate.writers_of` still lists them).

The endpoint -> read models link is declared (``query_endpoint(read_models=[...])``;
undeclared means "every registered read model", the safe guess). The write endpoint ->
tables link is declared (``command_endpoint(writes=[...])``) or learned by the write
guard in any process (``cqrs_writers``); a write endpoint with neither is assumed to write
anything, so it blocks until it is on ``command`` or declares its tables.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine

from ..core.errors import CommandRejected
from ..core.registry import Registry
from ..core.settings import Settings
from ..read.verify import VerifyReport, verify
from ..write.guard import NO_REQUEST
from .flags import FlagStore
from .history import ComparisonHistory
from .readiness import readiness
from .stages import COMMAND

#: Endpoint -> tables it was seen writing (inside or outside commands).
LearnedWriters = Callable[[], Mapping[str, frozenset[str]]]


@dataclass(frozen=True, slots=True)
class Blocker:
    """One reason a promotion is refused. ``subject`` is the read model or endpoint."""

    kind: str  # drift | readiness | legacy-writer | unknown-read-model
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

    def to_dict(self) -> dict[str, Any]:
        body = super().to_dict()
        body["error"]["blockers"] = [blocker.to_dict() for blocker in self.blockers]
        return body


class Gate:
    def __init__(
        self,
        registry: Registry,
        engine: Engine,
        flags: FlagStore,
        history: ComparisonHistory,
        learned_writers: LearnedWriters,
        kept_by_capture: Callable[[str], bool],
        settings: Settings,
    ) -> None:
        self._kept_by_capture = kept_by_capture
        self._registry = registry
        self._engine = engine
        self._flags = flags
        self._history = history
        self._learned_writers = learned_writers
        self._settings = settings

    def check(self, endpoint: str, stage: str) -> None:
        """Raise :class:`PromotionRefused` naming every blocker, else return."""
        found = self.blockers(endpoint)
        if found:
            raise PromotionRefused(endpoint, stage, found)

    def blockers(
        self, endpoint: str, *, verified: dict[str, VerifyReport] | None = None
    ) -> list[Blocker]:
        """Everything that keeps ``endpoint`` from serving its read models now.

        ``verified``: read model name -> its verify report, used where present and filled
        in as more are verified, so judging several endpoints verifies each model once."""
        reports = verified if verified is not None else {}
        models, unknown = self._registry.read_models_of(endpoint)
        found = [
            Blocker("unknown-read-model", name, f"read model {name} is not registered")
            for name in unknown
        ]
        for model in models:
            report = reports.get(model.name)
            if report is None:
                report = reports[model.name] = verify(self._engine, model)
            if not report.ok:
                counts = report.drift_counts()
                found.append(
                    Blocker(
                        "drift",
                        model.name,
                        f"read model {model.name} drifts from its source "
                        f"(missing {counts['missing']}, extra {counts['extra']}, "
                        f"different {counts['different']}; run flask cqrs verify --repair)",
                    )
                )
        settings = self._settings
        judged = readiness(
            self._history.window(endpoint, settings.comparison_window),
            min_comparisons=settings.promotion_min_comparisons,
        )
        if not judged.ready:
            found.append(
                Blocker(
                    "readiness",
                    endpoint,
                    f"{endpoint} is not ready: {judged.why} (see flask cqrs report)",
                )
            )
        projected_only = [m for m in models if not self._kept_by_capture(m.name)]
        sources = frozenset().union(*(model.depends_on for model in projected_only))
        if not sources:
            return found
        with self._engine.connect() as connection:
            for writer, tables in sorted(self.writers_of(sources).items()):
                found.extend(self._writer_blockers(connection, writer, tables))
        return found

    def writers_of(self, tables: Iterable[str]) -> dict[str, frozenset[str] | None]:
        """Write endpoints that write (or may write: ``None``) any of ``tables``."""
        wanted = frozenset(tables)
        learned = {
            name: set(written)
            for name, written in self._learned_writers().items()
            if name != NO_REQUEST
        }
        found: dict[str, frozenset[str] | None] = {}
        for endpoint in self._registry.of_kind("write"):
            known = set(endpoint.writes) | learned.get(endpoint.name, set())
            if not known:
                found[endpoint.name] = None
            elif known & wanted:
                found[endpoint.name] = frozenset(known & wanted)
        for name, tables_written in learned.items():
            if name not in self._registry.endpoints and tables_written & wanted:
                found[name] = frozenset(tables_written & wanted)
        return found

    def _writer_blockers(
        self, connection: Connection, writer: str, tables: frozenset[str] | None
    ) -> list[Blocker]:
        what = "may write its source tables (declare writes=[...])"
        if tables is not None:
            what = f"writes {', '.join(sorted(tables))}"
        if writer not in self._registry.endpoints:
            message = f"endpoint {writer} {what} outside a command and has no command path"
            return [Blocker("legacy-writer", writer, message)]
        flag = self._flags.get_in(connection, writer)
        if flag.stage != COMMAND:
            message = f"write endpoint {writer} {what} and is still on {flag.stage}"
            return [Blocker("legacy-writer", writer, message)]
        if flag.percent < 100.0:
            message = f"write endpoint {writer} {what} and is on command for only {flag.percent:g}%"
            return [Blocker("legacy-writer", writer, message)]
        return []
