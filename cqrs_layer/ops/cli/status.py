"""``flask cqrs status [--json]``: the first command to run in any app.

The text names the database on its first line (stdout: this is the command that says
where you are); ``--json`` prints the same as one document for scripts. Exit 0, or 4 when
the database cannot be used (unreachable, or the toolkit's tables missing: the text
still shows what the app serves without them).
"""

from __future__ import annotations

import json
from typing import Any

import click
from flask import current_app
from flask.cli import with_appcontext

from ...core.tables import metadata
from ..context import toolkit_of
from ..status import app_status
from .exits import DATABASE, DatabaseNotReady
from .table import table_lines


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead.")
@with_appcontext
def status_command(as_json: bool) -> None:
    """Where the migration stands: the database, the toolkit's tables, each endpoint's
    stage and what blocks its next one, each read model (rows, pending changes, how it
    is kept current), fallbacks and their reasons, endpoints the app does not serve."""
    document = app_status(current_app, toolkit_of())
    unreachable = document["database"]["problem"]
    if as_json:
        click.echo(json.dumps(document, indent=2, default=str))
    elif unreachable:
        raise DatabaseNotReady(unreachable)
    else:
        click.echo("\n".join(status_lines(document)))
    if unreachable or document["toolkit_tables"]["problem"]:
        click.get_current_context().exit(DATABASE)


def status_lines(document: dict[str, Any]) -> list[str]:
    tables = document["toolkit_tables"]
    lines = [
        f"database: {document['database']['url']}",
        tables["problem"] or f"toolkit tables: all {len(metadata.tables)} present",
        "",
    ]
    endpoints = document["endpoints"]
    lines += table_lines(
        ("ENDPOINT", "KIND", "STAGE", "PERCENT", "SAMPLE", "NEXT", "BLOCKED BY"),
        [
            (e["endpoint"], e["kind"], e["stage"], f"{e['percent']:g}%", f"{e['sample_rate']:g}",
             _next(e["next"]), _blocked(e["blockers"]))
            for e in endpoints
        ],
    ) if endpoints else ["no wrapped endpoints"]  # fmt: skip
    models = document["read_models"]
    if models:
        lines.append("")
        lines += table_lines(
            ("READ MODEL", "ROWS", "PENDING", "CAPTURE", "VERIFIED", "KEPT BY"),
            [
                (m["name"], _count(m["rows"], "no table"), _count(m["pending_changes"], "-"),
                 m["capture"], _verified(m["verified"]), " + ".join(m["kept_by"]) or "nothing")
                for m in models
            ],
        )  # fmt: skip
    lines += _section("blocked:", _blocked_lines(endpoints))
    lines += _section("fallbacks:", _fallback_lines(endpoints))
    lines += _section(
        "not served by the app (no URL rule has this endpoint):",
        [f"  {e['endpoint']} ({', '.join(e['declared_in'])})" for e in document["not_found"]],
    )
    return lines


def _next(step: dict[str, Any] | None) -> str:
    if step is None:
        return "-"  # at the end of its rollout
    return step["stage"] if step["percent"] is None else f"{step['stage']} {step['percent']:g}%"


def _blocked(blockers: list[dict[str, str]] | None) -> str:
    if blockers is None:
        return "?"  # not judged: no toolkit tables
    return f"{len(blockers)} (below)" if blockers else "-"


def _count(value: int | None, absent: str) -> str:
    return absent if value is None else str(value)


def _verified(verified: dict[str, Any] | None) -> str:
    if verified is None:
        return "-"  # not verified by this run (flask cqrs verify does)
    if verified["ok"]:
        return "ok" if not verified["behind"] else f"ok, {verified['behind']} behind"
    return f"{verified['drift']} drifting"


def _blocked_lines(endpoints: list[dict[str, Any]]) -> list[str]:
    lines = []
    for endpoint in endpoints:
        if endpoint["blockers"]:
            lines.append(f"  {endpoint['endpoint']} -> {_next(endpoint['next'])}:")
            lines += [f"    - {blocker['message']}" for blocker in endpoint["blockers"]]
    return lines


def _fallback_lines(endpoints: list[dict[str, Any]]) -> list[str]:
    lines = []
    for endpoint in endpoints:
        fallbacks = endpoint["fallbacks"]
        if not fallbacks or not (fallbacks["count"] or fallbacks["stale"]):
            continue
        reasons = "; ".join(f"{why}: {count}" for why, count in fallbacks["reasons"].items())
        line = f"  {endpoint['endpoint']}: {fallbacks['count']}"
        line += f" ({reasons})" if reasons else ""
        if fallbacks["stale"]:
            line += f"; {fallbacks['stale']} served by legacy while changes were pending"
        lines.append(line)
    return lines


def _section(title: str, lines: list[str]) -> list[str]:
    return ["", title, *lines] if lines else []
