"""``flask cqrs report``: how each read endpoint's comparisons are going, and whether it is
ready to promote.

Ready means: at least ``CQRS_PROMOTION_MIN_SAMPLES`` comparisons in the window (the newest
``CQRS_DEMOTION_WINDOW``), none of them a mismatch, and no error or timeout on either side.
The promotion gate (``flask cqrs flags set``) makes its own checks; this is the summary a
person reads before asking.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import click
from flask import current_app

from . import comparisons
from .comparisons import EndpointStats, setting
from .rollout import COMPLETE


@dataclass(frozen=True, slots=True)
class Readiness:
    ready: bool
    why: str


def readiness(stats: EndpointStats, stage: str, min_samples: int) -> Readiness:
    if stage == COMPLETE:
        return Readiness(False, "already complete")
    window = stats.window
    problems = []
    if window.samples < min_samples:
        problems.append(f"{window.samples} of the {min_samples} comparisons it needs")
    if window.mismatches:
        problems.append(f"{window.mismatches} mismatch(es) in the last {window.samples}")
    if window.new_errors:
        problems.append(f"{window.new_errors} new-path error(s) in the last {window.samples}")
    if window.legacy_errors:
        problems.append(f"{window.legacy_errors} legacy error(s) in the last {window.samples}")
    if problems:
        return Readiness(False, "; ".join(problems))
    return Readiness(True, f"{window.samples} comparisons in a row matched, no errors")


def endpoint_report(endpoint: str, last: int) -> dict[str, Any]:
    state = current_app.extensions["cqrs"]
    config = current_app.config
    flag = state.flags.get(endpoint)
    with state.db.engine.connect() as connection:
        stats = comparisons.endpoint_stats(
            connection,
            endpoint,
            window_size=int(setting(config, "CQRS_DEMOTION_WINDOW")),
            last_diffs=last,
        )
    ready = readiness(stats, flag.stage, int(setting(config, "CQRS_PROMOTION_MIN_SAMPLES")))
    window = stats.window
    return {
        "endpoint": endpoint,
        "stage": flag.stage,
        "percent": flag.percent,
        "sample_rate": flag.sample_rate,
        "samples": stats.samples,
        "window": {
            "samples": window.samples,
            "mismatches": window.mismatches,
            "mismatch_rate": window.mismatch_rate,
            "new_errors": window.new_errors,
            "legacy_errors": window.legacy_errors,
            "error_rate": window.error_rate,
        },
        "outcomes": stats.outcomes,
        "latency_ms": {
            "legacy": {"p50": stats.legacy_p50_ms, "p95": stats.legacy_p95_ms},
            "new": {"p50": stats.new_p50_ms, "p95": stats.new_p95_ms},
        },
        "errors": {"legacy": stats.legacy_errors, "new": stats.new_errors},
        "fallbacks": stats.fallbacks,
        "ready_to_promote": ready.ready,
        "why": ready.why,
        "last_diffs": stats.last_diffs,
    }


@click.command("report")
@click.argument("endpoints", nargs=-1)
@click.option(
    "--last",
    "-n",
    type=click.IntRange(min=0),
    default=None,
    help="How many of the newest mismatches to show (default CQRS_REPORT_LAST_DIFFS).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def report_command(endpoints: tuple[str, ...], last: int | None, as_json: bool) -> None:
    """Per read endpoint: stage, samples, mismatch rate, latencies, errors, last diffs,
    and whether it is ready to promote."""
    state = current_app.extensions["cqrs"]
    reads = sorted(name for name, wrapped in state.endpoints.items() if wrapped.kind == "read")
    unknown = [name for name in endpoints if name not in reads]
    if unknown:
        raise click.BadParameter(
            f"not a wrapped read endpoint: {', '.join(unknown)} "
            f"(known: {', '.join(reads) or 'none'})",
            param_hint="ENDPOINTS",
        )
    count = last if last is not None else int(setting(current_app.config, "CQRS_REPORT_LAST_DIFFS"))
    reports = [endpoint_report(name, count) for name in (endpoints or reads)]
    if as_json:
        click.echo(json.dumps(reports, indent=2, sort_keys=True, default=str))
        return
    if not reports:
        click.echo("no wrapped read endpoints")
    for report in reports:
        click.echo("\n".join(format_report(report)))


def format_report(report: dict[str, Any]) -> list[str]:
    window = report["window"]
    latency = report["latency_ms"]
    lines = [
        f"{report['endpoint']}",
        f"  stage: {report['stage']} ({report['percent']:g}%, "
        f"sampling {report['sample_rate']:.0%})",
        f"  samples: {report['samples']} (window {window['samples']}), mismatch rate "
        f"{window['mismatch_rate']:.1%} ({window['mismatches']}/{window['samples']})",
        f"  latency ms: legacy p50 {_ms(latency['legacy']['p50'])} "
        f"p95 {_ms(latency['legacy']['p95'])} | new p50 {_ms(latency['new']['p50'])} "
        f"p95 {_ms(latency['new']['p95'])}",
        f"  errors: legacy {report['errors']['legacy']}, new {report['errors']['new']}; "
        f"fallbacks {report['fallbacks']}",
        f"  ready to promote: {'yes' if report['ready_to_promote'] else 'no'} ({report['why']})",
    ]
    if report["last_diffs"]:
        lines.append("  last diffs:")
    for diff in report["last_diffs"]:
        lines.append(f"    {diff['at']}  {diff['request']}")
        for entry in diff["entries"]:
            lines.append(
                f"      {entry['path']}: {entry['kind']}  legacy={_value(entry['legacy'])}  "
                f"new={_value(entry['new'])}"
            )
        if diff["truncated"]:
            lines.append("      … (more differences not kept)")
    return lines


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _value(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)
