"""``flask cqrs ...``: the toolkit's commands, on one click group every app gets."""

from __future__ import annotations

import json

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from .flags_cli import flags_cli
from .readmodel_cli import backfill_command, verify_command
from .report_cli import report_command
from .tables import outbox

cqrs_cli = AppGroup("cqrs", help="CQRS migration toolkit.")
cqrs_cli.add_command(backfill_command)
cqrs_cli.add_command(verify_command)
cqrs_cli.add_command(flags_cli)
cqrs_cli.add_command(report_command)


@cqrs_cli.command("routes")
def routes_command() -> None:
    """Each wrapped endpoint, its kind (read/write) and the mode serving it now."""
    state = current_app.extensions["cqrs"]
    if not state.endpoints:
        click.echo("no wrapped endpoints")
        return
    rows = [
        (name, wrapped.kind, state.modes.mode_for(name, wrapped.kind))
        for name, wrapped in sorted(state.endpoints.items())
    ]
    width = max(len(name) for name, _, _ in rows)
    for name, kind, mode in rows:
        click.echo(f"{name:<{width}}  {kind:<5}  {mode}")


@cqrs_cli.command("outbox")
@click.option(
    "--last",
    "-n",
    "count",
    type=click.IntRange(min=1),
    default=None,
    help="How many of the newest events (default CQRS_OUTBOX_SHOW).",
)
@click.option("--payload", is_flag=True, help="Print each event's payload too.")
def outbox_command(count: int | None, payload: bool) -> None:
    """The newest events in the outbox, oldest first."""
    state = current_app.extensions["cqrs"]
    limit = count or int(current_app.config["CQRS_OUTBOX_SHOW"])
    with state.db.engine.connect() as connection:
        rows = (
            connection.execute(select(outbox).order_by(outbox.c.position.desc()).limit(limit))
            .mappings()
            .all()
        )
    if not rows:
        click.echo("outbox is empty")
        return
    for row in reversed(rows):
        line = (
            f"{row['position']:>6}  {row['occurred_at']:%Y-%m-%d %H:%M:%S}  "
            f"{row['event_type']}  {row['aggregate_type']}:{row['aggregate_id']}  "
            f"correlation={row['correlation_id'] or '-'}"
        )
        if payload:
            line += "  " + json.dumps(row["payload"], sort_keys=True)
        click.echo(line)
