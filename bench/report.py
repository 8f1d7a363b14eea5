"""Records (what results.json holds), the targets they are judged against, and the table.

Two kinds of record share one list:

- comparison: ``{"name", "backend", "baseline_p50_ms", "baseline_p95_ms",
  "candidate_p50_ms", "candidate_p95_ms", "ratio", ...}`` with ratio = candidate p50 /
  baseline p50 (below 1: the new path is faster);
- single figure: ``{"name", "backend", "value", "unit", ...}`` (seed and backfill times,
  one flag evaluation, the write throughput ratio, the refresh rate).

The ``overhead:*`` records compare the rollout machinery with less of it: baseline =
the unwrapped view (``overhead:legacy-stage``), stage legacy (``overhead:shadow``) or the
shop without change capture (``overhead:capture``, ``overhead:capture+refresh``).

Targets are printed as PASS/FAIL; missing one is reported, not an error: this is a
measurement, not a test. Most targets are upper bounds (a ratio of latencies); the
throughput ratio's is a lower bound (higher is better). The targets are set for the full
run (100,000 orders): a ``--quick`` run records them with ``"pass": null`` and prints
``n/a (quick)`` instead of a verdict.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .measure import Comparison, percentile

Record = dict[str, Any]

#: The issue's targets on the ratio of a read or write record's p50s.
FAST_READS = (
    "read:products.list_products?sort=popularity",
    "read:products.list_products?sort=rating",
    "read:reports.top_products",
    "read:reports.daily_sales",
)
FAST_READ_RATIO = 0.05
READ_RATIO = 1.0
#: Issue 9: the order-placing hot path with the shop's hand-written projections (its goal:
#: 1.3), and the same write with every read model kept by refresh-by-key instead.
WRITE_RATIOS = {"write:orders.place_order": 1.5, "write:orders.place_order-refresh": 2.0}
#: Issue 4: the wrapper at stage legacy, and shadow comparisons, cost a request little;
#: issue 9: so does change capture, on a write of the legacy path.
OVERHEAD_RATIOS = {
    "overhead:legacy-stage": 1.05,
    "overhead:shadow": 1.15,
    "overhead:capture": 1.15,
    # Not set by the issue: a legacy write that refreshes its read models does the work
    # of place_order-refresh, and is held to its bound.
    "overhead:capture+refresh": 2.0,
}
#: Issue 9: orders/s through the command path, as a share of the legacy path's.
THROUGHPUT_RATIO = 0.8
BACKFILL_SECONDS_SQLITE = 10.0
#: Issue 4: "the per-request cost of evaluating a flag is a few microseconds".
FLAG_EVAL_US = 5.0
#: What a --quick run prints where a verdict would be: the targets are the full run's.
QUICK_VERDICT = "n/a (quick)"


@dataclass(frozen=True)
class Target:
    limit: float
    inclusive: bool  # ratio <= limit, or value < limit (>= / > when higher_is_better)
    higher_is_better: bool = False

    def describe(self, unit: str = "") -> str:
        if self.higher_is_better:
            sign = ">=" if self.inclusive else ">"
        else:
            sign = "<=" if self.inclusive else "<"
        return f"{sign} {self.limit:g}{unit}"

    def met(self, measured: float) -> bool:
        if math.isnan(measured):
            return False
        if self.higher_is_better:
            return measured >= self.limit if self.inclusive else measured > self.limit
        return measured <= self.limit if self.inclusive else measured < self.limit


def judge(
    record: Record,
    target: Target,
    measured: float | None,
    *,
    quick: bool,
    clean: bool = True,
    unit: str = "",
    prefix: str = "",
) -> Record:
    """Record ``target`` and whether ``measured`` meets it; a --quick run records no
    verdict (``"pass": None``): its shop is 50 times smaller than the one the targets
    are for. A measurement with errors (not ``clean``) never passes."""
    record["target"] = prefix + target.describe(unit)
    if quick:
        record["pass"] = None
    else:
        record["pass"] = clean and measured is not None and target.met(measured)
    return record


def comparison_target(name: str) -> Target | None:
    # "read:reports.top_products?days=365" is still the top-products report.
    base = name.split("?", 1)[0]
    if name in FAST_READS or base in ("read:reports.top_products", "read:reports.daily_sales"):
        return Target(FAST_READ_RATIO, inclusive=True)
    if name.startswith("read:"):
        return Target(READ_RATIO, inclusive=True)
    if name in WRITE_RATIOS:
        return Target(WRITE_RATIOS[name], inclusive=True)
    if name in OVERHEAD_RATIOS:
        return Target(OVERHEAD_RATIOS[name], inclusive=True)
    return None


def comparison_record(
    result: Comparison, backend: str, *, judged: bool = True, quick: bool = False
) -> Record:
    base_p50 = percentile(result.baseline_ms, 0.50)
    cand_p50 = percentile(result.candidate_ms, 0.50)
    ratio = cand_p50 / base_p50 if base_p50 > 0 else math.nan
    record: Record = {
        "name": result.name,
        "backend": backend,
        "baseline_p50_ms": _ms(base_p50),
        "baseline_p95_ms": _ms(percentile(result.baseline_ms, 0.95)),
        "candidate_p50_ms": _ms(cand_p50),
        "candidate_p95_ms": _ms(percentile(result.candidate_ms, 0.95)),
        "ratio": None if math.isnan(ratio) else round(ratio, 4),
        "samples": {"baseline": len(result.baseline_ms), "candidate": len(result.candidate_ms)},
        "params": result.params,
        "errors": {"baseline": result.baseline_errors, "candidate": result.candidate_errors},
    }
    if result.first_error:
        record["first_error"] = result.first_error
    if result.compared_bodies:
        record["body_mismatches"] = result.mismatches
        if result.first_mismatch:
            record["first_mismatch"] = result.first_mismatch
    target = comparison_target(result.name) if judged else None
    if target is not None:
        judge(record, target, record["ratio"], quick=quick, clean=clean(record), prefix="ratio ")
    return record


def with_comparisons(record: Record, comparisons: Record) -> Record:
    """A shadow record and what its server's comparisons recorded: the ratio only counts
    if every request was compared, and every comparison matched."""
    record["comparisons"] = comparisons
    if record.get("pass") is not None:
        record["pass"] = record["pass"] and comparisons_clean(comparisons)
    return record


def comparisons_clean(comparisons: Record) -> bool:
    outcomes = comparisons["outcomes"]
    return comparisons["recorded"] == comparisons["expected"] == outcomes.get("match", 0)


def clean(record: Record) -> bool:
    """No request failed and no answers differed."""
    return not any((record.get("errors") or {}).values()) and not record.get("body_mismatches")


def figure_record(
    name: str,
    backend: str,
    value: float,
    unit: str,
    target: Target | None = None,
    *,
    quick: bool = False,
    **extra: Any,
) -> Record:
    record: Record = {
        "name": name,
        "backend": backend,
        "value": round(value, 3),
        "unit": unit,
        **extra,
    }
    if target is not None:
        judge(record, target, value, quick=quick, clean=clean(record), unit=f" {unit}")
    return record


def flag_eval_target() -> Target:
    return Target(FLAG_EVAL_US, inclusive=True)


def throughput_target() -> Target:
    return Target(THROUGHPUT_RATIO, inclusive=True, higher_is_better=True)


def backfill_target(backend: str) -> Target | None:
    return Target(BACKFILL_SECONDS_SQLITE, inclusive=False) if backend == "sqlite" else None


def _ms(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 3)


# -- output --------------------------------------------------------------------------------


def _fmt(value: Any, width: int) -> str:
    if value is None:
        return "-".rjust(width)
    if isinstance(value, float):
        return f"{value:.2f}".rjust(width)
    return str(value).rjust(width)


def _verdict(record: Record) -> str:
    if "pass" not in record:
        return ""
    if record["pass"] is None:
        return QUICK_VERDICT
    return "PASS" if record["pass"] else "FAIL"


def comparison_line(record: Record) -> str:
    ratio = record["ratio"]
    return (
        f"{record['name']:<46} {record['backend']:<10}"
        f"{_fmt(record['baseline_p50_ms'], 9)}{_fmt(record['baseline_p95_ms'], 9)}"
        f"{_fmt(record['candidate_p50_ms'], 9)}{_fmt(record['candidate_p95_ms'], 9)}"
        f"{('-' if ratio is None else f'{ratio:.3f}').rjust(8)}"
        f"  {record.get('target', '').removeprefix('ratio '):<8} {_verdict(record):<12}"
        f"{record['samples']['baseline']:>5}"
    )


COMPARISON_HEADER = (
    f"{'name':<46} {'backend':<10}{'leg p50':>9}{'leg p95':>9}{'new p50':>9}{'new p95':>9}"
    f"{'ratio':>8}  {'target':<8} {'':<12}{'n':>5}"
)

QUICK_NOTE = (
    f"--quick: the targets are set for the full run (100,000 orders); here: {QUICK_VERDICT}"
)

_NOTES = {
    "overhead:legacy-stage": [
        "overhead:legacy-stage: leg = the unwrapped legacy view, new = wrapped at stage legacy;"
    ],
    "overhead:shadow": [
        "overhead:shadow: leg = stage legacy, new = stage shadow comparing 100% of requests "
        "after the response,",
        "  each comparison finished before the next request (-saturated: back to back, the "
        "comparisons compete with the requests for the CPU; no target);",
    ],
    "overhead:capture": [
        "overhead:capture: leg = the legacy path without change capture, new = the legacy "
        "path with it, the refresh deferred (CQRS_REFRESH_IN_WRITES=false): the triggers "
        "alone;",
        "  +refresh: with the refresh-by-key before commit too, as the shop runs.",
    ],
    "write:orders.place_order": [
        "write:*: leg = the legacy path on a copy of the database without change capture (the "
        "shop before the migration);",
        "  place_order-refresh: the command path with no hand-written projection, every read "
        "model kept by refresh-by-key.",
    ],
}


def figure_line(record: Record) -> str:
    unit = record["unit"]
    return (
        f"{record['name']:<46} {record['backend']:<10}{record['value']:>10.2f} {unit:<7}"
        f"{record.get('target', ''):<13}{_verdict(record)}"
    )


def throughput_line(record: Record) -> str:
    return (
        f"  {record['backend']:<10} legacy {record['baseline_per_s']:8.1f}/s "
        f"(p50 {_fmt(record['baseline_p50_ms'], 7).strip()} ms), "
        f"command {record['candidate_per_s']:8.1f}/s "
        f"(p50 {_fmt(record['candidate_p50_ms'], 7).strip()} ms): ratio {record['value']:.3f}"
    )


def refresh_line(record: Record) -> str:
    update = record["update_s"]
    return (
        f"  {record['backend']:<10} {record['lines']} lines -> {record['keys']} keys in "
        f"{record['seconds']:.2f} s = {record['value']:.1f} keys/s; the UPDATE itself: "
        f"{update['with_capture']:.3f} s with capture, {update['without_capture']:.3f} s "
        "without"
    )


def table(records: Sequence[Record], *, quick: bool = False) -> str:
    comparisons = [r for r in records if "ratio" in r]
    figures = [r for r in records if "value" in r]
    lines = ["Latency in ms through HTTP (legacy = baseline, new = candidate; ratio of p50s)"]
    if quick:
        lines.append(QUICK_NOTE)
    lines += [COMPARISON_HEADER, "-" * len(COMPARISON_HEADER)]
    lines += [comparison_line(r) for r in comparisons]
    present = {r["name"] for r in comparisons}
    for name, note in _NOTES.items():
        if name in present:
            lines += note
    lines += ["", f"{'figure':<46} {'backend':<10}{'value':>10} {'unit':<7}{'target':<13}result"]
    lines += [figure_line(r) for r in figures]
    throughput = [r for r in figures if r["name"].startswith("write-throughput:")]
    if throughput:
        first = throughput[0]
        lines += [
            "",
            f"{first['name']}: orders/s with {first['clients']} concurrent clients against "
            f"{first['workers']} gunicorn workers per path (value = command / legacy)",
        ]
        lines += [throughput_line(r) for r in throughput]
    refreshes = [r for r in figures if r["name"] == "refresh-throughput"]
    if refreshes:
        lines += [
            "",
            "refresh-throughput: flask cqrs refresh (every read model) after one UPDATE of "
            "order_lines made outside the app; no legacy counterpart, no target",
        ]
        lines += [refresh_line(r) for r in refreshes]
    return "\n".join(lines)


def problems(records: Sequence[Record]) -> list[str]:
    """Everything a reader must not miss: failed targets, errors, answers that differ."""
    found = []
    for r in records:
        where = f"{r['name']} [{r.get('backend')}]"
        if r.get("body_mismatches"):
            found.append(
                f"MISMATCH {where}: {r['body_mismatches']} responses differ between legacy "
                f"and new; first: {r.get('first_mismatch')}"
            )
        errors = r.get("errors") or {}
        if any(errors.values()):
            found.append(f"ERRORS {where}: {errors}; first: {r.get('first_error')}")
        compared = r.get("comparisons")
        if compared is not None and not comparisons_clean(compared):
            found.append(
                f"COMPARISONS {where}: {compared['recorded']} recorded of "
                f"{compared['expected']} requests, outcomes {compared['outcomes']}"
            )
        if r.get("pass") is False:
            found.append(f"FAIL {where}: target {r['target']} not met")
    return found


def write_json(path: Path, records: Sequence[Record]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(list(records), indent=2) + "\n")
