"""``flask cqrs flags list|set|history``: see and change the flags from a shell.

Exit codes of ``set`` (:mod:`.exits`): 0 changed (or already so: nothing recorded), 1 a
concurrent change (run it again), 2 a bad argument (unknown endpoint, a stage the
endpoint's kind has not, a percentage outside 0..100, a sample rate outside 0..1, no
reason), 3 refused by the promotion gate. A bad argument changes nothing. With several
endpoints, each is gated and audited on its own, in turn: a refusal stops there, and the
ones before it, already printed as changed, stay changed.
"""

from __future__ import annotations

import getpass
import json

import click
from flask.cli import AppGroup

from ...core.errors import CommandRejected
from ...rollout.flags import FlagState
from ...rollout.gate import PromotionRefused
from ...rollout.stages import check_stage
from ..context import toolkit_of
from .exits import Refused
from .preflight import uses_database
from .table import print_table

flags_cli = AppGroup("flags", help="Per-endpoint stages and rollout percentages.")


@flags_cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@uses_database
def list_command(as_json: bool) -> None:
    """Every wrapped endpoint's stage, percentage and sample rate."""
    flags = toolkit_of().flags.all()
    if as_json:
        click.echo(json.dumps([flag.to_dict() for flag in flags], indent=2))
        return
    if not flags:
        click.echo("no wrapped endpoints")
        return
    rows = [
        (flag.endpoint, flag.kind, flag.stage, _pct(flag.percent), f"{flag.sample_rate:g}",
         _source(flag))
        for flag in flags
    ]  # fmt: skip
    print_table(("ENDPOINT", "KIND", "STAGE", "PERCENT", "SAMPLE", "SET BY"), rows)


@flags_cli.command("set")
@click.argument("endpoints", nargs=-1, required=True, metavar="ENDPOINT... STAGE")
@click.option(
    "--percent",
    type=float,
    help="Share of subjects served the new path (0..100).",
    show_default="unchanged at the same stage, else 100",
)
@click.option(
    "--sample-rate",
    type=float,
    help="Share of requests compared (0..1).",
    show_default="unchanged",
)
@click.option("--reason", required=True, help="Why; recorded in the audit log.")
@click.option("--actor", help="Who; recorded in the audit log.", show_default="cli:<login name>")
@click.option("--force", is_flag=True, help="Override a promotion gate refusal (audited).")
@uses_database
def set_command(
    endpoints: tuple[str, ...],
    percent: float | None,
    sample_rate: float | None,
    reason: str,
    actor: str | None,
    force: bool,
) -> None:
    """Move each ENDPOINT to STAGE (read: legacy|shadow|live|complete, write:
    legacy|command). Several endpoints are changed one by one, in the order given, each
    gated and audited on its own; the first refusal stops the rest. Setting what is
    already so records nothing. Exits 3 when the promotion gate refuses."""
    if len(endpoints) < 2:
        raise click.UsageError("name at least one ENDPOINT and the STAGE to move it to")
    *names, stage = endpoints
    toolkit = toolkit_of()
    try:  # every name and the stage first: a usage error must leave nothing half-changed
        for endpoint in names:
            check_stage(toolkit.registry.endpoint(endpoint).kind, stage)
    except CommandRejected as error:
        raise click.UsageError(error.message) from None
    changes = toolkit.changes
    for endpoint in names:
        try:
            change = changes.change(
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
            raise Refused("\n".join(lines)) from None
        except CommandRejected as error:
            if error.status == 409:  # changed concurrently: retrying may work
                raise click.ClickException(f"refused: {error.message}") from None
            raise click.UsageError(error.message) from None
        flag = change.after
        if not change.changed:
            click.echo(f"{flag.endpoint}: already {_describe(flag)} (nothing recorded)")
            continue
        click.echo(f"{flag.endpoint}: {_describe(flag)}{'  (FORCED)' if force else ''}")


@flags_cli.command("history")
@click.argument("endpoint", required=False)
@click.option(
    "--last",
    "-n",
    "limit",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="How many of the newest changes.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of lines.")
@uses_database
def history_command(endpoint: str | None, limit: int, as_json: bool) -> None:
    """Audited flag changes, newest first (of ENDPOINT, or of all)."""
    try:
        entries = toolkit_of().flags.history(endpoint, limit=limit)
    except CommandRejected as error:
        raise click.UsageError(error.message) from None
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


def _describe(flag: FlagState) -> str:
    return f"{flag.stage} {_pct(flag.percent)}, sample {flag.sample_rate:g}  [{_source(flag)}]"


def _source(flag: FlagState) -> str:
    if not flag.version:
        return flag.source
    return f"{flag.source}, v{flag.version} by {flag.updated_by}"


def _pct(percent: float | None) -> str:
    return "-" if percent is None else f"{percent:g}%"


def _default_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no login name in some containers
        return "cli"
