"""What a scenario reports: counts, and a verdict per promise with its evidence.

A verdict is *held* or *broken*, judged from what happened, never from what is expected
to happen: the promises known to be broken today are listed in :data:`KNOWN_BROKEN`, which
only changes how the table and the exit code present them (and the quick tests mark the
same ones ``xfail(strict=True)``), never the verdict itself.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .tally import Tally

#: Promise id -> the issue that tracks it being broken today. When one of these starts to
#: hold, the CLI says so and exits 1 until it is removed here (like a strict xfail).
KNOWN_BROKEN: dict[str, str] = {}


@dataclass(frozen=True)
class Verdict:
    promise: str  # a stable id, e.g. "oversell.exactly-stock-sold"
    held: bool
    evidence: str

    @property
    def known_issue(self) -> str | None:
        return KNOWN_BROKEN.get(self.promise)


def verdict(promise: str, held: bool, evidence: str) -> Verdict:
    return Verdict(promise, bool(held), evidence)


@dataclass
class Counts:
    """The figures every scenario fills in as far as they apply (0 otherwise)."""

    requests: int = 0
    kills: int = 0
    flips: int = 0
    fuzz_cases: int = 0
    server_errors: int = 0  # 5xx answers
    acknowledged_lost: int = 0  # 2xx writes the database does not show
    drift_after: int = 0  # rows `flask cqrs verify` found differing at the end
    max_latency_ms: float = 0.0

    def add_tally(self, tally: Tally) -> None:
        self.requests += tally.requests
        self.server_errors += tally.server_errors
        self.max_latency_ms = max(self.max_latency_ms, tally.max_ms)


@dataclass
class ScenarioResult:
    scenario: str
    backend: str
    seconds: float = 0.0
    counts: Counts = field(default_factory=Counts)
    statuses: dict[str, int] = field(default_factory=dict)
    verdicts: list[Verdict] = field(default_factory=list)
    #: Scenario-specific figures (per phase, per round...), for the JSON and the docs.
    details: dict[str, Any] = field(default_factory=dict)
    #: Set when the harness itself failed: the scenario did not run to the end.
    error: str | None = None

    def add_tally(self, tally: Tally) -> None:
        self.counts.add_tally(tally)
        for status, number in tally.statuses.items():
            self.statuses[status] = self.statuses.get(status, 0) + number

    def judge(self, promise: str, held: bool, evidence: str) -> None:
        self.verdicts.append(verdict(promise, held, evidence))

    @property
    def broken(self) -> list[Verdict]:
        return [v for v in self.verdicts if not v.held]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["counts"]["max_latency_ms"] = round(self.counts.max_latency_ms, 1)
        data["verdicts"] = [{**asdict(v), "known_issue": v.known_issue} for v in self.verdicts]
        return data
