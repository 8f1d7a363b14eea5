"""``python -m bench``: every step for every backend, then the table and results.json."""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

from .client import get
from .database import (
    DataFacts,
    SeedSize,
    backfill,
    copy_without_capture,
    data_facts,
    fresh_database,
    postgres_admin_url,
    postgres_version,
    prepare_schema,
    seed,
    stock_order_pool,
)
from .machine import machine_record
from .measure import Budget, Comparison, Side, WrongPath, percentile, run_ab
from .overhead import (
    ShadowLedger,
    flag_evaluations,
    measure_legacy_stage,
    measure_shadow,
    shadow_budget,
)
from .refresh_rate import measure_refresh
from .report import (
    COMPARISON_HEADER,
    QUICK_NOTE,
    Record,
    backfill_target,
    comparison_line,
    comparison_record,
    figure_line,
    figure_record,
    flag_eval_target,
    problems,
    refresh_line,
    table,
    throughput_line,
    throughput_target,
    with_comparisons,
    write_json,
)
from .scenarios import ReadScenario, read_scenarios
from .servers import UNWRAPPED_APP, ServerFailed, shop_server
from .throughput import CLIENTS, WORKERS, Schedule, measure_throughput, p50
from .writes import measure_writes, order_params

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_OUT = BENCH_DIR / "out" / "results.json"
BACKENDS = ("sqlite", "postgresql")
QUICK_ORDERS = 2_000
EXIT_ERRORS = 1  # --quick only: a request failed or the two paths answered differently
EXIT_MISCONFIGURED = 2
FLOOR_SAMPLES = 50
#: Per overhead:* record: stop adding pairs after this many seconds.
OVERHEAD_SECONDS = 60.0
OVERHEAD_SECONDS_QUICK = 10.0
OVERHEAD_WARMUP = 20
OVERHEAD_MIN_SAMPLES = 300
#: (record, let each comparison finish before the next request?)
SHADOW_RECORDS = (("overhead:shadow", True), ("overhead:shadow-saturated", False))
FLAG_EVAL_REPEATS = 5
#: write-throughput: rounds per path, each warm-up seconds then counted seconds.
THROUGHPUT = Schedule(rounds=3, warmup=2.0, seconds=10.0)
THROUGHPUT_QUICK = Schedule(rounds=1, warmup=1.0, seconds=3.0)
#: refresh-throughput: order lines one UPDATE changes, and the seconds the refresh of
#: them may take (fewer lines are changed when a probe says it would take longer).
REFRESH_LINES = 10_000
REFRESH_LINES_QUICK = 1_000
REFRESH_SECONDS = 120.0
REFRESH_SECONDS_QUICK = 20.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Legacy vs CQRS latency through HTTP, on SQLite and PostgreSQL, in one run.",
    )
    parser.add_argument("--orders", type=int, default=None, help="orders to seed (100000)")
    parser.add_argument(
        "--backends",
        default=None,
        help="comma-separated: sqlite,postgresql (default both; PostgreSQL is skipped "
        "when unreachable unless named explicitly)",
    )
    parser.add_argument("--samples", type=int, default=None, help="pairs per record (300)")
    parser.add_argument(
        "--budget",
        type=float,
        default=None,
        help="seconds per record after which no more pairs are taken, once --min-samples "
        "are in (15); keeps slow legacy endpoints from taking the whole run",
    )
    parser.add_argument("--min-samples", type=int, default=None, help="pairs always taken (25)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed pairs per record (3)")
    parser.add_argument(
        "--overhead-samples",
        type=int,
        default=None,
        help="pairs per overhead:* record (1500; the shadow ones at most 980, what the "
        "comparison history keeps); the differences measured there are small",
    )
    parser.add_argument(
        "--flag-evals",
        type=int,
        default=None,
        help="flag evaluations per timing repeat (100000, 5 repeats)",
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"smoke run: {QUICK_ORDERS} orders, few samples"
    )
    parser.add_argument(
        "--aa",
        action="store_true",
        help="A/A run: both servers on the legacy path, to measure the harness's own noise "
        "(ratios should be near 1)",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results JSON path")
    args = parser.parse_args(argv)
    defaults: dict[str, Any] = (
        {
            "orders": QUICK_ORDERS,
            "samples": 20,
            "budget": 5.0,
            "min_samples": 10,
            "warmup": 2,
            "overhead_samples": 60,
            "flag_evals": 20_000,
        }
        if args.quick
        else {
            "orders": 100_000,
            "samples": 300,
            "budget": 15.0,
            "min_samples": 25,
            "warmup": 3,
            "overhead_samples": 1500,
            "flag_evals": 100_000,
        }
    )
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if min(args.orders, args.samples, args.min_samples, args.overhead_samples) < 1:
        parser.error("--orders, --samples, --min-samples and --overhead-samples must be >= 1")
    if args.warmup < 0 or args.flag_evals < 1:
        parser.error("--warmup must be >= 0, --flag-evals >= 1")
    args.min_samples = min(args.min_samples, args.samples)
    return args


def say(message: str) -> None:
    print(message, flush=True)


def choose_backends(requested: str | None) -> tuple[list[str], str | None]:
    """The backends to run and PostgreSQL's version (None when it is not used)."""
    names = [n.strip() for n in (requested or ",".join(BACKENDS)).split(",") if n.strip()]
    unknown = [n for n in names if n not in BACKENDS]
    if unknown:
        raise SystemExit(f"unknown backend(s) {unknown}; choose from {', '.join(BACKENDS)}")
    if "postgresql" not in names:
        return names, None
    version = postgres_version(postgres_admin_url())
    if version is not None:
        return names, version
    if requested is not None:
        raise SystemExit(f"PostgreSQL is not reachable at {postgres_admin_url()}")
    say(f"PostgreSQL is not reachable at {postgres_admin_url()}: measuring SQLite only.")
    return [n for n in names if n != "postgresql"], None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    backends, pg_version = choose_backends(args.backends)
    started = time.perf_counter()
    records: list[Record] = [
        machine_record(pg_version),
        {
            "name": "run",
            "command": "python -m bench " + " ".join(sys.argv[1:] if argv is None else argv),
            "quick": args.quick,
            "orders": args.orders,
            "backends": backends,
            "samples": args.samples,
            "min_samples": args.min_samples,
            "budget_s": args.budget,
            "warmup": args.warmup,
            "overhead_samples": args.overhead_samples,
            "flag_evals": args.flag_evals,
            "candidate_path": "legacy (A/A run)" if args.aa else "read-model / command",
            # The shop's default unless set; quiet for read models whose capture is
            # installed, as it is on the migrated database.
            "write_guard": os.environ.get("FLASK_CQRS_WRITE_GUARD", "shop default (warn)"),
            "write_baseline": "the legacy path on a copy of the database without change "
            "capture, write guard off (the shop before the migration)",
            "throughput": {
                "clients": CLIENTS,
                "workers": WORKERS,
                **vars(throughput_schedule(args)),
            },
        },
    ]
    machine = records[0]
    say(
        f"Machine: {machine['cpu']}, {machine['cores']} cores, Python {machine['python']}, "
        f"SQLite {machine['sqlite']}, PostgreSQL {machine['postgresql'] or '-'}"
    )
    if args.quick:
        say(QUICK_NOTE)
    try:
        for backend in backends:
            records += run_backend(backend, args)
    except WrongPath as error:
        say(f"\nABORTED: {error}")
        return EXIT_MISCONFIGURED
    except ServerFailed as error:
        say(f"\nABORTED: {error}")
        return EXIT_MISCONFIGURED
    records[1]["seconds"] = round(time.perf_counter() - started, 1)
    write_json(args.out, records)
    say("\n" + table(records, quick=args.quick))
    found = problems(records)
    if found:
        say("\n" + "\n".join(found))
    elif args.quick:
        say("\nNo errors, no mismatches (targets not judged: --quick).")
    else:
        say("\nEvery target met, no errors, no mismatches.")
    say(f"\nResults: {args.out}   (whole run {records[1]['seconds']} s)")
    # A quick run is a smoke run: a failed request or a difference is what it looks for.
    # A full run is a measurement: it exits 0 whatever it measured.
    return EXIT_ERRORS if args.quick and found else 0


def throughput_schedule(args: argparse.Namespace) -> Schedule:
    return THROUGHPUT_QUICK if args.quick else THROUGHPUT


def run_backend(backend: str, args: argparse.Namespace) -> list[Record]:
    size = SeedSize(args.orders)
    log_dir = args.out.parent / "logs" / backend
    log_dir.mkdir(parents=True, exist_ok=True)
    records: list[Record] = []
    with (
        tempfile.TemporaryDirectory(prefix="shop-bench-") as workdir,
        fresh_database(backend, workdir) as url,
    ):
        schema = prepare_schema(url)
        if schema.missing_columns:
            say(
                f"[{backend}] note: the migrations lack {', '.join(schema.missing_columns)}; "
                "schema built from the models instead"
            )
        if schema.created_outside_migrations:
            say(
                f"[{backend}] note: no migration creates "
                f"{', '.join(schema.created_outside_migrations)} yet; created from the metadata"
            )
        records.append(
            {
                "name": "schema",
                "backend": backend,
                "method": schema.method,
                "created_outside_migrations": list(schema.created_outside_migrations),
                "missing_columns": list(schema.missing_columns),
            }
        )
        seed_s, written = seed(url, size)
        say(f"[{backend}] seeded {written} in {seed_s:.1f} s")
        records.append(
            figure_record("seed", backend, seed_s, "s", rows=written, params=size.as_kwargs())
        )
        pool = stock_order_pool(url, random.Random(7))
        backfill_s, results = backfill(url)
        say(f"[{backend}] backfilled {len(results)} read models in {backfill_s:.2f} s")
        records.append(
            figure_record(
                "backfill",
                backend,
                backfill_s,
                "s",
                backfill_target(backend),
                quick=args.quick,
                orders=args.orders,
                models={r.name: {"rows": r.rows, "seconds": round(r.seconds, 3)} for r in results},
            )
        )
        facts = data_facts(url, pool)
        with copy_without_capture(backend, url, workdir) as plain_url:
            say(
                f"[{backend}] copied the database without change capture: the legacy side "
                "of the write records"
            )
            records += measure_latencies(backend, args, url, plain_url, facts, log_dir)
            records.append(measure_write_throughput(backend, args, url, plain_url, facts, log_dir))
            if not args.aa:
                records.append(refresh_record(backend, args, url, plain_url))
        # Last: it writes a flag row, which every server sharing the database would obey.
        records += flag_eval_records(url, backend, args.flag_evals, args.quick)
    return records


def measure_latencies(
    backend: str,
    args: argparse.Namespace,
    url: str,
    plain_url: str,
    facts: DataFacts,
    log_dir: Path,
) -> list[Record]:
    """Every A/B latency record, through 1-worker servers."""
    records: list[Record] = []
    new_path = "legacy" if args.aa else "new"
    # An A/A run compares the plain legacy path with itself for the writes too.
    refresh_path, refresh_url = ("plain", plain_url) if args.aa else ("refresh", url)
    capture_path, capture_url = ("plain", plain_url) if args.aa else ("capture", url)
    with (
        shop_server("legacy", url, "legacy", log_dir) as legacy_server,
        shop_server("new", url, new_path, log_dir) as new_server,
        shop_server("plain", plain_url, "plain", log_dir) as plain_server,
        shop_server("new-refresh", refresh_url, refresh_path, log_dir) as refresh_server,
        shop_server("unwrapped", url, "legacy", log_dir, UNWRAPPED_APP) as unwrapped_server,
        shop_server("shadow", url, "shadow", log_dir) as shadow_server,
        shop_server("capture", capture_url, capture_path, log_dir) as capture_server,
    ):
        legacy = Side("legacy", legacy_server, "legacy", allow_missing_header=args.aa)
        capturing = Side("capture", capture_server, "legacy", allow_missing_header=args.aa)
        reads_on = "legacy" if args.aa else "read-model"
        writes_on = "legacy" if args.aa else "command"
        new_reads = Side("new", new_server, reads_on, allow_missing_header=args.aa)
        new_writes = Side("new", new_server, writes_on, allow_missing_header=args.aa)
        plain = Side("plain", plain_server, "legacy", allow_missing_header=args.aa)
        refreshing = Side("new-refresh", refresh_server, writes_on, allow_missing_header=args.aa)
        budget = Budget(args.samples, args.min_samples, args.budget, args.warmup)
        floor = http_floor(legacy_server.port, new_server.port)
        say(f"[{backend}] HTTP floor (GET /healthz, p50): {floor:.2f} ms")
        records.append(
            figure_record(
                "http_floor",
                backend,
                floor,
                "ms",
                params=f"GET /healthz, p50 of {FLOOR_SAMPLES} per server: the least any "
                "request costs here, so the least a candidate p50 can be",
            )
        )

        def log(result: Comparison) -> None:
            # An A/A run compares legacy with itself: the targets mean nothing there.
            record = comparison_record(result, backend, judged=not args.aa, quick=args.quick)
            records.append(record)
            say(comparison_line(record))

        say(f"[{backend}] measuring through HTTP, legacy vs {reads_on}/{writes_on}:")
        say(COMPARISON_HEADER)
        for scenario in read_scenarios(facts):
            log(measure_read(scenario, legacy, new_reads, budget))
        # Before the writes: legacy writes leave the read models behind, and a shadow
        # comparison would then (rightly) find a mismatch.
        unwrapped = Side("unwrapped", unwrapped_server, None)
        shadowed = Side("shadow", shadow_server, "legacy")
        overhead = Budget(
            args.overhead_samples,
            min(args.overhead_samples, OVERHEAD_MIN_SAMPLES),
            OVERHEAD_SECONDS_QUICK if args.quick else OVERHEAD_SECONDS,
            OVERHEAD_WARMUP,
        )
        log(measure_legacy_stage(facts, unwrapped, legacy, overhead))
        ledger = ShadowLedger(url)
        try:
            for name, settle in SHADOW_RECORDS:
                result, compared = measure_shadow(
                    name, facts, legacy, shadowed, shadow_budget(overhead), ledger,
                    settle=settle,
                )  # fmt: skip
                record = with_comparisons(
                    comparison_record(result, backend, quick=args.quick), compared
                )
                records.append(record)
                say(comparison_line(record))
                say(f"    comparisons recorded by the shadow server: {compared}")
        finally:
            ledger.close()
        # The legacy side of every write is the shop before the migration (plain); in an
        # A/A run every candidate is the plain path too.
        candidates = {
            "write:orders.place_order": new_writes,
            "write:orders.place_order-refresh": refreshing,
            "overhead:capture": capturing,
            "overhead:capture+refresh": legacy,
        }
        if args.aa:
            candidates = dict.fromkeys(candidates, refreshing)
        measure_writes(facts, plain, candidates, budget, random.Random(7), log)
    return records


def measure_write_throughput(
    backend: str,
    args: argparse.Namespace,
    url: str,
    plain_url: str,
    facts: DataFacts,
    log_dir: Path,
) -> Record:
    schedule = throughput_schedule(args)
    command_path, command_url = ("plain", plain_url) if args.aa else ("new", url)
    writes_on = "legacy" if args.aa else "command"
    say(
        f"[{backend}] write throughput: {CLIENTS} clients, {WORKERS} workers per server, "
        f"{schedule.rounds} round(s) of {schedule.seconds:g} s per path"
    )
    with (
        shop_server("plain-4", plain_url, "plain", log_dir, workers=WORKERS) as plain_server,
        shop_server("new-4", command_url, command_path, log_dir, workers=WORKERS) as new_server,
    ):
        plain = Side("plain-4", plain_server, "legacy", allow_missing_header=args.aa)
        command = Side("new-4", new_server, writes_on, allow_missing_header=args.aa)
        measured = measure_throughput(facts, plain, command, schedule, random.Random(11))
    base, cand = measured.baseline, measured.candidate
    ratio = cand.per_second / base.per_second if base.per_second > 0 else math.nan
    record = figure_record(
        "write-throughput:orders.place_order",
        backend,
        ratio,
        "x",
        None if args.aa else throughput_target(),
        quick=args.quick,
        baseline_per_s=round(base.per_second, 1),
        candidate_per_s=round(cand.per_second, 1),
        baseline_p50_ms=_rounded(p50(base)),
        candidate_p50_ms=_rounded(p50(cand)),
        orders={"baseline": base.ok, "candidate": cand.ok},
        errors={"baseline": base.errors, "candidate": cand.errors},
        seconds={"baseline": round(base.seconds, 2), "candidate": round(cand.seconds, 2)},
        clients=CLIENTS,
        workers=WORKERS,
        params=f"POST /api/orders back to back, {order_params(facts)}; value = command "
        "orders/s / legacy orders/s",
    )
    first_error = base.first_error or cand.first_error
    if first_error:
        record["first_error"] = first_error
    say(figure_line(record))
    say(throughput_line(record))
    return record


def refresh_record(backend: str, args: argparse.Namespace, url: str, plain_url: str) -> Record:
    lines = REFRESH_LINES_QUICK if args.quick else REFRESH_LINES
    budget = REFRESH_SECONDS_QUICK if args.quick else REFRESH_SECONDS
    say(f"[{backend}] refresh throughput: one UPDATE of {lines} order lines, then refresh")
    rate = measure_refresh(url, plain_url, lines, budget)
    record = figure_record(
        "refresh-throughput",
        backend,
        rate.keys_per_second,
        "keys/s",
        keys=rate.keys,
        seconds=round(rate.seconds, 3),
        lines=rate.lines,
        lines_wanted=rate.lines_wanted,
        update_s={
            "with_capture": round(rate.update_s, 3),
            "without_capture": round(rate.update_plain_s, 3),
        },
        models=rate.models,
        probe=rate.probe,
        errors={"failed_models": len(rate.failed), "left_pending": sum(rate.left_pending.values())},
        params="UPDATE order_lines SET quantity = quantity + 1 for every k-th line, outside "
        "the app; then Refresher.refresh_committed per read model (what flask cqrs refresh "
        "runs), on the app's engine",
    )
    record["target"] = "n/a"  # no legacy counterpart: a figure to read, not a verdict
    if rate.failed or rate.left_pending:
        record["first_error"] = f"failed: {rate.failed}; left pending: {rate.left_pending}"
    if rate.scaled_down:
        record["scaled_down"] = rate.scaled_down
        say(f"[{backend}] note: fewer lines than wanted: {rate.scaled_down}")
    say(figure_line(record))
    say(refresh_line(record))
    return record


def _rounded(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 3)


def flag_eval_records(url: str, backend: str, number: int, quick: bool) -> list[Record]:
    records = []
    for result in flag_evaluations(url, number, FLAG_EVAL_REPEATS):
        record = figure_record(
            f"flag-eval:{result.case}",
            backend,
            result.best_us,
            "us",
            flag_eval_target(),
            quick=quick,
            median_us=round(result.median_us, 3),
            evaluations=result.evaluations,
            stage=result.stage,
            serve_new=result.serve_new,
            params="state.flags.route(endpoint, 'read', request) in a request context: "
            "best of 5 repeats, per evaluation",
        )
        records.append(record)
        say(
            f"[{backend}] flag evaluation ({result.case}): {result.best_us:.2f} us "
            f"(median of repeats {result.median_us:.2f} us, stage {result.stage})"
        )
    return records


def http_floor(*ports: int) -> float:
    timings = [get(port, "/healthz").ms for _ in range(FLOOR_SAMPLES) for port in ports]
    return percentile(timings, 0.5)


def measure_read(scenario: ReadScenario, legacy: Side, new: Side, budget: Budget) -> Comparison:
    # Seeded by the name: every run (and both sides) asks the same sequence of requests.
    rng = random.Random(zlib.crc32(scenario.name.encode()))
    paths = [scenario.path(rng) for _ in range(budget.warmup + budget.samples)]
    return run_ab(
        scenario.name,
        scenario.params,
        legacy,
        new,
        lambda index, side: get(side.server.port, paths[index]),
        budget,
        ok_status=200,
        compare_bodies=True,
    )
