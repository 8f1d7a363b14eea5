"""``flask cqrs backfill`` and ``flask cqrs verify``: rebuild and check read models.

Both work on the app's registered read models, on its database. ``verify`` exits 0 only
when every model agrees with its source, so it can gate a deploy or a flag change; rows
that differ only because change capture recorded a change not yet applied are reported
as *behind*, not drift (live reads fall back while they are). With ``--repair`` it exits 0
when the repair left them agreeing (checked by a second, read-only verify).
"""

from __future__ import annotations

import json
import time

import click
from flask.cli import with_appcontext
from sqlalchemy import Engine

from ...core.read_model import ReadModel
from ...read.backfill import backfill
from ...read.refresh import Refresher
from ...read.verify import RowDiff, VerifyReport, verify
from ..context import toolkit_of
from .preflight import uses_database


@click.command("backfill")
@click.argument("names", nargs=-1)
@with_appcontext
@uses_database
def backfill_command(names: tuple[str, ...]) -> None:
    """Rebuild read models from the source tables (all when no NAME is given)."""
    engine, models = _engine_and_models(names)
    for model in models:
        click.echo(f"{model.name}:", nl=False)
        result = backfill(
            engine, model, progress=lambda _name, phase: click.echo(f" {phase}", nl=False)
        )
        click.echo(f"\n{model.name}: {result.rows} rows in {result.seconds:.2f}s")


@click.command("verify")
@click.argument("names", nargs=-1)
@click.option("--repair", is_flag=True, help="Fix exactly the rows that differ.")
@click.option("--show", default=10, show_default=True, help="Differing rows to print per model.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead.")
@with_appcontext
@uses_database
def verify_command(names: tuple[str, ...], repair: bool, show: int, as_json: bool) -> None:
    """Compare read models with their source; exit 1 unless all agree."""
    engine, models = _engine_and_models(names)
    all_agree = True
    documents = []
    for model in models:
        report = verify(engine, model, repair=repair)
        agrees = report.ok
        after: VerifyReport | None = None
        if repair and not report.ok:
            after = verify(engine, model)
            agrees = after.ok
        all_agree = all_agree and agrees
        if as_json:
            document = report.to_dict(show=show)
            document["agrees"] = agrees
            documents.append(document)
        else:
            _print_report(report, after, show)
    if as_json:
        click.echo(json.dumps({"ok": all_agree, "models": documents}, indent=2, default=str))
    if not all_agree:
        click.get_current_context().exit(1)


def _engine_and_models(names: tuple[str, ...]) -> tuple[Engine, list[ReadModel]]:
    toolkit = toolkit_of()
    known: dict[str, ReadModel] = dict(toolkit.registry.read_models)
    unknown = [name for name in names if name not in known]
    if unknown:
        listing = ", ".join(sorted(known)) or "(none registered)"
        raise click.BadParameter(
            f"unknown read model(s) {', '.join(unknown)}; known: {listing}", param_hint="NAME"
        )
    chosen = list(dict.fromkeys(names)) if names else sorted(known)
    return toolkit.engine, [known[name] for name in chosen]


def _print_report(report: VerifyReport, after: VerifyReport | None, show: int) -> None:
    behind = report.behind
    if report.ok:
        click.echo(f"{report.name}: OK ({report.source_rows} rows){_behind_note(report)}")
        for diff in behind[:show]:
            click.echo(f"  behind {_describe(diff)}")
        return
    counts = report.drift_counts()
    click.echo(
        f"{report.name}: DRIFT missing={counts['missing']} extra={counts['extra']} "
        f"different={counts['different']} "
        f"(source {report.source_rows} rows, table {report.table_rows} rows)"
        f"{_behind_note(report)}"
    )
    for diff in report.drift[:show]:
        click.echo(f"  {_describe(diff)}")
    if report.repaired is not None:
        fixed = report.repaired
        click.echo(
            f"  repaired: inserted {fixed.inserted}, deleted {fixed.deleted}, "
            f"updated {fixed.updated}"
        )
    if after is not None:
        click.echo(f"  after repair: {'OK' if after.ok else 'STILL DRIFTING'}")


def _behind_note(report: VerifyReport) -> str:
    """Rows that differ only because a change is captured and not yet applied."""
    behind = len(report.behind)
    if not behind:
        return ""
    rows = "row" if behind == 1 else "rows"
    return f"; {behind} {rows} behind, changes pending (flask cqrs refresh applies them)"


def _describe(diff: RowDiff) -> str:
    data = diff.to_dict()
    key = ", ".join(f"{k}={v!r}" for k, v in data["key"].items())
    if diff.kind == "different":
        changes = "; ".join(
            f"{column}: expected {values['expected']!r}, actual {values['actual']!r}"
            for column, values in data["columns"].items()
        )
        return f"different {key}: {changes}"
    return f"{diff.kind} {key}: {data['row']}"


@click.command("refresh")
@click.argument("names", nargs=-1)
@click.option("--follow", is_flag=True, help="Keep applying new changes until stopped.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.05),
    default=1.0,
    show_default=True,
    help="With --follow: seconds between looks when nothing is pending.",
)
@with_appcontext
@uses_database
def refresh_command(names: tuple[str, ...], follow: bool, interval: float) -> None:
    """Apply the changes other writers left pending (scripts, cron jobs, other services,
    psql): recompute the read-model rows of the keys they changed. With --follow, a
    worker: keep doing it until Ctrl-C or SIGTERM."""
    engine, models = _engine_and_models(names)
    refresher = Refresher(lambda: {model.name: model for model in models})
    chosen = [model.name for model in models]
    while True:
        started = time.perf_counter()
        result = refresher.refresh_committed(engine, only=chosen)
        seconds = time.perf_counter() - started
        for name, keys in sorted(result.models.items()):
            click.echo(f"{name}: {keys} keys refreshed in {seconds:.2f}s")
        for name, why in sorted(result.failed.items()):
            click.echo(f"{name}: NOT refreshed, stays pending: {why}", err=True)
        if not follow:
            if not result.models and not result.failed:
                click.echo("nothing pending")
            if result.failed:
                click.get_current_context().exit(1)
            return
        if not result.models:
            time.sleep(interval)
