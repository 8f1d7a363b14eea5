"""``flask cqrs ...``: the toolkit's commands, on one click group every app gets."""

from __future__ import annotations

import json

import click
from flask.cli import AppGroup
from sqlalchemy import select

from ...core.tables import outbox
from ...rollout.flags import FlagState
from ...rollout.stages import COMMAND, COMPLETE, LIVE, SHADOW
from ..context import toolkit_of
from .flags import flags_cli
from .preflight import uses_database
from .read_models import backfill_command, refresh_command, verify_command
from .report import report_command
from .status import status_command
from .table import print_table

cqrs_cli = AppGroup(
    "cqrs",
    help="CQRS migration toolkit. Start with 'flask cqrs status'.\n\n"
    "Exit codes: 0 done, 1 a check failed (verify, refresh, a concurrent flag change), 2 a "
    "bad argument, 3 refused by the promotion gate, 4 the database cannot be used (not "
    "created, unreachable, or not migrated).",
)
cqrs_cli.add_command(backfill_command)
cqrs_cli.add_command(verify_command)
cqrs_cli.add_command(refresh_command)
cqrs_cli.add_command(flags_cli)
cqrs_cli.add_command(report_command)
cqrs_cli.add_command(status_command)

OUTBOX_SHOWN = 20


@cqrs_cli.command("routes")
@uses_database
def routes_command() -> None:
    """Each wrapped endpoint and which path a request to it gets now."""
    flags = toolkit_of().flags.all()
    if not flags:
        click.echo("no wrapped endpoints")
        return
    rows = [(flag.endpoint, flag.kind, flag.stage, served_by(flag)) for flag in flags]
    print_table(("ENDPOINT", "KIND", "STAGE", "A REQUEST IS SERVED BY"), rows)


def served_by(flag: FlagState) -> str:
    """What a request to the endpoint gets at its flag, in words."""
    compared = f"; {flag.sample_rate:.0%} of requests compared"
    if flag.stage == COMMAND:
        return _split("its command", flag.percent)
    if flag.stage == SHADOW:
        return "legacy" + compared
    if flag.stage == LIVE:
        return _split("the read model", flag.percent) + compared
    if flag.stage == COMPLETE:
        return "the read model (legacy if it fails)"
    return "legacy"


def _split(new_path: str, percent: float) -> str:
    if percent >= 100:
        return new_path
    if percent <= 0:
        return "legacy (0% of subjects on " + new_path + ")"
    return f"{new_path} for {percent:g}% of subjects, legacy for the rest"


@cqrs_cli.command("outbox")
@click.option(
    "--last",
    "-n",
    "count",
    type=click.IntRange(min=1),
    default=OUTBOX_SHOWN,
    show_default=True,
    help="How many of the newest events.",
)
@click.option("--payload", is_flag=True, help="Print each event's payload too.")
@uses_database
def outbox_command(count: int, payload: bool) -> None:
    """The newest events in the outbox, oldest first."""
    with toolkit_of().engine.connect() as connection:
        rows = (
            connection.execute(select(outbox).order_by(outbox.c.position.desc()).limit(count))
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
