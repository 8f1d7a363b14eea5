"""The printed table, the verdict lines under it, and results.json."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .results import ScenarioResult, Verdict

COLUMNS = (
    ("scenario", 18),
    ("backend", 10),
    ("requests", 8),
    ("kills", 5),
    ("flips", 5),
    ("fuzz", 5),
    ("5xx", 5),
    ("lost", 4),
    ("drift", 5),
    ("max ms", 8),
    ("promises", 12),
    ("s", 5),
)


def table(results: Sequence[ScenarioResult]) -> str:
    header = "  ".join(f"{name:<{width}}" for name, width in COLUMNS)
    lines = [header, "-" * len(header)]
    for result in results:
        counts = result.counts
        held = sum(v.held for v in result.verdicts)
        promises = "ERROR" if result.error else f"{held}/{len(result.verdicts)} held"
        cells = (
            result.scenario,
            result.backend,
            counts.requests,
            counts.kills,
            counts.flips,
            counts.fuzz_cases,
            counts.server_errors,
            counts.acknowledged_lost,
            counts.drift_after,
            f"{counts.max_latency_ms:.0f}",
            promises,
            f"{result.seconds:.0f}",
        )
        widths = [width for _name, width in COLUMNS]
        lines.append("  ".join(f"{cell!s:<{w}}" for cell, w in zip(cells, widths, strict=True)))
    return "\n".join(lines)


def verdict_line(verdict: Verdict) -> str:
    if verdict.held:
        mark = "HELD  " if verdict.known_issue is None else "HELD (known-broken list is stale!)"
    else:
        mark = "BROKEN" if verdict.known_issue is None else "BROKEN (known)"
    issue = f"  [{verdict.known_issue}]" if verdict.known_issue and not verdict.held else ""
    return f"  {mark} {verdict.promise}: {verdict.evidence}{issue}"


def verdicts(results: Sequence[ScenarioResult]) -> str:
    lines = []
    for result in results:
        lines.append(f"{result.scenario} on {result.backend}:")
        if result.error:
            lines.append(f"  ERROR the scenario did not finish: {result.error}")
        lines += [verdict_line(v) for v in result.verdicts]
    return "\n".join(lines)


def surprises(results: Sequence[ScenarioResult]) -> list[str]:
    """What makes the run fail: a harness error, a promise broken that is not known to be,
    or a known-broken promise that now holds (its entry must go, like a strict xfail)."""
    found = []
    for result in results:
        where = f"{result.scenario}/{result.backend}"
        if result.error:
            found.append(f"{where}: did not finish: {result.error}")
        for v in result.verdicts:
            if not v.held and v.known_issue is None:
                found.append(f"{where}: BROKEN {v.promise}")
            if v.held and v.known_issue is not None:
                found.append(
                    f"{where}: {v.promise} now holds; remove it from KNOWN_BROKEN "
                    "(stress/results.py) and its xfail marker"
                )
    return found


def write_json(path: Path, run: dict[str, Any], results: Sequence[ScenarioResult]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"run": run, "results": [r.to_dict() for r in results]}
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
