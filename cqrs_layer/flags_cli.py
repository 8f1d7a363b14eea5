"""``flask cqrs flags list|set|history``: see and change the flags from a shell.

A refused change (unknown endpoint, a stage the endpoint's kind has not, a percentage
outside 0..100, a sample rate outside 0..1, the promotion gate) prints the reason and
exits 1; nothing is written.
"""

from __future__ import annotations

import getpass
import json

import click
from flask import current_app
from flask.cli import AppGroup

from .errors import CommandRejected
from .flags import FlagState, FlagStore
from .gate import PromotionRefused

flags_cli = AppGroup("flags", help="Per-endpoint stages and rollout percentages.")


@flags_cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_command(as_json: bool) -> None:
    """Every wrapped endpoint's stage, percentage and sample rate."""
    flags = _store().all()
    if as_json:
        click.echo(json.dumps([flag.to_dict() for flag in flags], indent=2))
        return
    if not flags:
        click.echo("no wrapped endpoints")
        return
    width = max(len(flag.endpoint) for flag in flags)
    for flag in flags:
        click.echo(f"{flag.endpoint:<{width}}  {flag.kind:<5}  {_describe(flag)}")


@flags_cli.command("set")
@click.argument("endpoint")
@click.argument("stage")
@click.option("--percent", type=float, help="Share of subjects served the new path (0..100).")
@click.option("--sample-rate", type=float, help="Share of requests compared (0..1).")
@click.option("--reason", default="", help="Why; recorded in the audit log.")
@click.option("--actor", default=None, help="Who; default cli:<login name>.")
@click.option("--force", is_flag=True, help="Override a promotion gate refusal (audited).")
def set_command(
    endpoint: str,
    stage: str,
    percent: float | None,
    sample_rate: float | None,
    reason: str,
    actor: str | None,
    force: bool,
) -> None:
    """Move ENDPOINT to STAGE (read: legacy|shadow|live|complete, write: legacy|command)."""
    try:
        flag = _store().set_stage(
            endpoint,
            stage,
            percent=percent,
            sample_rate=sample_rate,
            actor=actor or _default_actor(),
            reason=reason,
            force=force,
        )
    except PromotionRefused as refused:
        lines = [f"refused: {endpoint} cannot move to {stage}:"]
        lines += [f"  - {blocker.message}" for blocker in refused.blockers]
        lines.append("fix these, or pass --force with a --reason (the override is audited)")
        raise click.ClickException("\n".join(lines)) from None
    except CommandRejected as error:
        raise click.ClickException(f"refused: {error.message}") from None
    click.echo(f"{flag.endpoint}: {_describe(flag)}{'  (FORCED)' if force else ''}")


@flags_cli.command("history")
@click.argument("endpoint", required=False)
@click.option("--last", "-n", "limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of lines.")
def history_command(endpoint: str | None, limit: int, as_json: bool) -> None:
    """Audited flag changes, newest first (of ENDPOINT, or of all)."""
    try:
        entries = _store().history(endpoint, limit=limit)
    except CommandRejected as error:
        raise click.ClickException(error.message) from None
    if as_json:
        click.echo(json.dumps([entry.to_dict() for entry in entries], indent=2))
        return
    if not entries:
        click.echo("no flag changes recorded")
        return
    for entry in entries:
        click.echo(
            f"{entry.at:%Y-%m-%d %H:%M:%S}  {entry.endpoint}  "
            f"{entry.from_stage} {_pct(entry.from_percent)} -> "
            f"{entry.to_stage} {_pct(entry.to_percent)}  by {entry.actor}"
            f"{'  FORCED' if entry.forced else ''}  {entry.reason or '-'}"
        )


def _store() -> FlagStore:
    store: FlagStore = current_app.extensions["cqrs"].flags
    return store


def _describe(flag: FlagState) -> str:
    return (
        f"{flag.stage:<8}  {_pct(flag.percent):>5}  sample {flag.sample_rate:g}  "
        f"[{flag.source}{f', v{flag.version} by {flag.updated_by}' if flag.version else ''}]"
    )


def _pct(percent: float | None) -> str:
    return "-" if percent is None else f"{percent:g}%"


def _default_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no login name in some containers
        return "cli"
