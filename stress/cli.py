"""``python -m stress``: every scenario on every backend, then the table and results.json.

Exit codes: 0 every promise held or is known broken (``KNOWN_BROKEN``), 1 a promise broke
that is not known to, a known-broken one now holds, or a scenario did not finish, 2 the run
could not start (PostgreSQL unreachable when it must be used, a bad argument).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from bench.machine import machine_record

from . import crash, flag_flips, fuzz, lock_wait, oversell, readmodel_failure
from .context import ScenarioContext
from .database import BACKENDS, postgres_admin_url, postgres_version, shop_template
from .report import surprises, table, verdicts, write_json
from .results import ScenarioResult
from .sizes import FULL, QUICK, Sizes

STRESS_DIR = Path(__file__).resolve().parent
DEFAULT_OUT = STRESS_DIR / "out" / "results.json"
EXIT_SURPRISE = 1
EXIT_MISCONFIGURED = 2

Scenario = Callable[[ScenarioContext], ScenarioResult]
#: In the order they run: the ones that leave the shop calm first.
SCENARIOS: dict[str, Scenario] = {
    "oversell": oversell.run,
    "crash": crash.run,
    "flag-flips": flag_flips.run,
    "fuzz": fuzz.run,
    "readmodel-failure": readmodel_failure.run,
    "lock-wait": lock_wait.run,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m stress",
        description="Attack the shop through real gunicorn servers on SQLite and PostgreSQL "
        "and report, per scenario, whether each promise held.",
    )
    parser.add_argument(
        "--backends",
        default=None,
        help="comma-separated, from: sqlite,postgresql (default both; PostgreSQL is skipped "
        "when unreachable, unless named here or CI=true)",
    )
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help=f"comma-separated, from: {','.join(SCENARIOS)} (default all)",
    )
    parser.add_argument("--quick", action="store_true", help="the short version make test runs")
    parser.add_argument("--seed", type=int, default=1, help="seeds every random choice (1)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results JSON path")
    args = parser.parse_args(argv)
    args.scenarios = _names(args.scenarios, SCENARIOS, parser, "scenario")
    return args


def _names(given: str, known: Any, parser: argparse.ArgumentParser, what: str) -> list[str]:
    names = [n.strip() for n in given.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        parser.error(f"unknown {what}(s) {unknown}; choose from {', '.join(known)}")
    return names


def say(message: str) -> None:
    print(message, flush=True)


def choose_backends(requested: str | None) -> tuple[list[str], str | None]:
    """The backends to run and PostgreSQL's version; exits 2 when PostgreSQL must be used
    (named, or CI=true) but cannot be reached."""
    names = [n.strip() for n in (requested or ",".join(BACKENDS)).split(",") if n.strip()]
    unknown = [n for n in names if n not in BACKENDS]
    if unknown or not names:
        raise SystemExit(f"unknown backend(s) {unknown}; choose from {', '.join(BACKENDS)}")
    if "postgresql" not in names:
        return names, None
    version = postgres_version(postgres_admin_url())
    if version is not None:
        return names, version
    must = requested is not None or os.environ.get("CI", "").lower() == "true"
    if must:
        say(f"PostgreSQL is not reachable at {postgres_admin_url()} (and must be used here)")
        raise SystemExit(EXIT_MISCONFIGURED)
    say(f"PostgreSQL is not reachable at {postgres_admin_url()}: SQLite only.")
    return [n for n in names if n != "postgresql"], None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C, so every server is killed.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    backends, pg_version = choose_backends(args.backends)
    sizes = QUICK if args.quick else FULL
    started = time.monotonic()
    host = machine_record(pg_version)
    say(
        f"Machine: {host['cpu']}, {host['cores']} cores, Python {host['python']}, "
        f"SQLite {host['sqlite']}, PostgreSQL {host['postgresql'] or '-'}"
    )
    results: list[ScenarioResult] = []
    for backend in backends:
        results += run_backend(backend, args.scenarios, sizes, args)
    run = {
        "command": "python -m stress " + " ".join(sys.argv[1:] if argv is None else argv),
        "quick": args.quick,
        "seed": args.seed,
        "backends": backends,
        "scenarios": args.scenarios,
        "sizes": vars(sizes),
        "machine": host,
        "seconds": round(time.monotonic() - started, 1),
    }
    write_json(args.out, run, results)
    say("\n" + table(results))
    say("\n" + verdicts(results))
    found = surprises(results)
    calm = "No surprises: every promise held or is known to be broken."
    say("\n" + ("\n".join(found) if found else calm))
    say(f"\nResults: {args.out}   (whole run {run['seconds']} s)")
    return EXIT_SURPRISE if found else 0


def run_backend(
    backend: str, names: list[str], sizes: Sizes, args: argparse.Namespace
) -> list[ScenarioResult]:
    log_dir = args.out.parent / "logs" / backend
    say(f"[{backend}] preparing the shop (migrate, seed, backfill)")
    results = []
    with shop_template(backend, sizes) as template:
        if template.created_outside_migrations:
            tables = ", ".join(template.created_outside_migrations)
            say(f"[{backend}] note: no migration makes {tables}; made from the models")
        for name in names:
            say(f"[{backend}] {name}")
            context = ScenarioContext(template, sizes, log_dir, args.seed, say)
            results.append(run_scenario(name, context))
    return results


def run_scenario(name: str, context: ScenarioContext) -> ScenarioResult:
    """One scenario; a failure of the harness is reported as such, not as a verdict."""
    started = time.monotonic()
    try:
        result = SCENARIOS[name](context)
    except Exception as error:  # the scenario's servers were stopped by their blocks
        traceback.print_exc()
        result = ScenarioResult(name, context.backend, error=f"{type(error).__name__}: {error}")
    result.seconds = round(time.monotonic() - started, 1)
    held = sum(v.held for v in result.verdicts)
    total = len(result.verdicts)
    say(f"[{context.backend}] {name}: {held}/{total} promises held in {result.seconds} s")
    return result


def _exit_on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signal.SIGTERM)
