"""``flask cqrs report``: how each read endpoint's comparisons are going, and whether it is
ready to promote (:mod:`cqrs_layer.rollout.readiness`, the rule the gate applies too).
"""

from __future__ import annotations

import json
from typing import Any

import click
from flask.cli import with_appcontext

from ..context import toolkit_of
from ..reporting import endpoint_report
from .preflight import uses_database

LAST_DIFFS = 5


@click.command("report")
@click.argument("endpoints", nargs=-1)
@click.option(
    "--last",
    "-n",
    type=click.IntRange(min=0),
    default=LAST_DIFFS,
    show_default=True,
    help="How many of the newest mismatches to show.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@with_appcontext
@uses_database
def report_command(endpoints: tuple[str, ...], last: int, as_json: bool) -> None:
    """Per read endpoint: stage, samples, mismatch rate, latencies, errors, last diffs,
    and whether it is ready to promote."""
    toolkit = toolkit_of()
    reads = [endpoint.name for endpoint in toolkit.registry.of_kind("read")]
    unknown = [name for name in endpoints if name not in reads]
    if unknown:
        raise click.BadParameter(
            f"not a wrapped read endpoint: {', '.join(unknown)} "
            f"(known: {', '.join(reads) or 'none'})",
            param_hint="ENDPOINTS",
        )
    reports = [endpoint_report(toolkit, name, last) for name in (endpoints or reads)]
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
        f"fallbacks {report['fallbacks']}; legacy while changes pended "
        f"{report['outcomes'].get('stale', 0)}",
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
