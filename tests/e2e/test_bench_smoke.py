"""The benchmark harness runs end to end and writes well-formed results.

A smoke test of ``python -m bench --quick`` (a tiny shop, few samples, SQLite): it checks
the harness, not the timings, which on a tiny shop and a busy machine mean nothing (the
run judges no target either: they are the full run's).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.overhead import ENDPOINT, SUBJECT
from cqrs_layer.rollout.stages import in_rollout

REPO_ROOT = Path(__file__).resolve().parents[2]

READ_RECORDS = [
    "read:products.list_products",
    "read:products.list_products?sort=popularity",
    "read:products.list_products?sort=rating",
    "read:products.get_product",
    "read:customers.customer_orders",
    "read:customers.customer_summary",
    "read:reports.top_products",
    "read:reports.top_products?days=365",
    "read:reports.daily_sales",
    "read:reports.daily_sales?days=365",
    "read:reports.low_stock",
]
OVERHEAD_RECORDS = ["overhead:legacy-stage", "overhead:shadow", "overhead:shadow-saturated"]
WRITE_RECORDS = [
    "write:orders.place_order",
    "write:orders.place_order-refresh",
    "overhead:capture",
    "overhead:capture+refresh",
    "write:orders.pay_order",
    "write:orders.cancel_order",
]
#: The targets the full run judges, as a quick run records them (unjudged).
TARGETS = {
    "write:orders.place_order": "ratio <= 1.5",
    "write:orders.place_order-refresh": "ratio <= 2",
    "overhead:capture": "ratio <= 1.15",
    "overhead:capture+refresh": "ratio <= 2",
    "write-throughput:orders.place_order": ">= 0.8 x",
}
FLAG_EVAL_RECORDS = ["flag-eval:default", "flag-eval:live-50%"]
COMPARISON_KEYS = {
    "name",
    "backend",
    "baseline_p50_ms",
    "baseline_p95_ms",
    "candidate_p50_ms",
    "candidate_p95_ms",
    "ratio",
}


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, list]:
    out = tmp_path_factory.mktemp("bench") / "results.json"
    finished = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--backends", "sqlite", "--out", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    return finished, json.loads(out.read_text())


@pytest.mark.slow
def test_every_measured_endpoint_has_one_comparison_record(bench_run):
    _, records = bench_run
    comparisons = [r for r in records if "ratio" in r]
    assert [r["name"] for r in comparisons] == READ_RECORDS + OVERHEAD_RECORDS + WRITE_RECORDS
    for record in comparisons:
        assert set(record) >= COMPARISON_KEYS, record
        assert record["backend"] == "sqlite"


@pytest.mark.slow
def test_ratio_is_candidate_p50_over_baseline_p50(bench_run):
    _, records = bench_run
    for record in (r for r in records if "ratio" in r):
        expected = record["candidate_p50_ms"] / record["baseline_p50_ms"]
        # p50s are rounded to 1 µs, the ratio to 4 decimals.
        assert record["ratio"] == pytest.approx(expected, rel=1e-3, abs=1e-4), record
        assert record["baseline_p50_ms"] <= record["baseline_p95_ms"], record
        assert record["candidate_p50_ms"] <= record["candidate_p95_ms"], record


@pytest.mark.slow
def test_every_request_was_answered_and_both_paths_agreed(bench_run):
    _, records = bench_run
    for record in (r for r in records if "ratio" in r):
        assert record["errors"] == {"baseline": 0, "candidate": 0}, record
        assert record["samples"]["baseline"] == record["samples"]["candidate"] >= 10, record
        if record["name"] in READ_RECORDS + OVERHEAD_RECORDS:  # GETs: bodies compared
            assert record["body_mismatches"] == 0, record


@pytest.mark.slow
def test_overhead_records_judge_the_wrapper_and_shadow_comparisons(bench_run):
    finished, records = bench_run
    by_name = {r["name"]: r for r in records}
    legacy_stage = by_name["overhead:legacy-stage"]
    shadow, saturated = by_name["overhead:shadow"], by_name["overhead:shadow-saturated"]
    assert legacy_stage["target"] == "ratio <= 1.05"
    assert shadow["target"] == "ratio <= 1.15"
    assert "target" not in saturated  # what a busy machine pays: reported, not judged
    for record in (legacy_stage, shadow, saturated):
        # --quick: 60 pairs after 20 warm-up pairs, all taken (the time budget is generous).
        assert record["samples"] == {"baseline": 60, "candidate": 60}, record
    for record in (shadow, saturated):
        # Every request the shadow server served (warm-ups included) was compared: a match.
        assert record["comparisons"] == {
            "expected": 80,
            "recorded": 80,
            "outcomes": {"match": 80},
            "sample_rate": 1.0,
        }
    assert "overhead:shadow-saturated" in finished.stdout


@pytest.mark.slow
def test_flag_evaluation_is_timed_per_case_in_microseconds(bench_run):
    _, records = bench_run
    flag_evals = [r for r in records if r["name"].startswith("flag-eval:")]
    assert [r["name"] for r in flag_evals] == FLAG_EVAL_RECORDS
    for record in flag_evals:
        assert record["backend"] == "sqlite"
        assert record["unit"] == "us"
        assert 0 < record["value"] <= record["median_us"], record
        assert record["evaluations"] == 100_000  # --quick: 5 repeats of 20000
        assert record["target"] == "<= 5 us"
    default, live = flag_evals
    assert (default["stage"], default["serve_new"]) == ("legacy", False)
    # Half the subjects are served the read model: this one's bucket says which half.
    assert (live["stage"], live["serve_new"]) == ("live", in_rollout(ENDPOINT, SUBJECT, 50.0))


@pytest.mark.slow
def test_seed_backfill_and_machine_are_recorded(bench_run):
    finished, records = bench_run
    by_name = {r["name"]: r for r in records}
    backfill = by_name["backfill"]
    assert backfill["backend"] == "sqlite"
    assert backfill["unit"] == "s"
    assert backfill["value"] > 0
    assert backfill["target"] == "< 10 s"
    assert backfill["pass"] is None  # --quick: the target is the full run's
    assert backfill["models"]["catalog"]["rows"] == 50  # the quick shop has 50 products
    assert by_name["seed"]["rows"]["orders"] == 2000
    machine = by_name["machine"]
    assert machine["cores"] >= 1
    assert machine["cpu"]
    assert machine["sqlite"].count(".") == 2
    assert by_name["run"]["orders"] == 2000
    assert "write:orders.place_order" in finished.stdout


@pytest.mark.slow
def test_quick_run_records_the_targets_without_judging_them(bench_run):
    finished, records = bench_run
    by_name = {r["name"]: r for r in records}
    for name, target in TARGETS.items():
        assert by_name[name]["target"] == target, by_name[name]
    judged = [r for r in records if "pass" in r]
    assert judged and all(r["pass"] is None for r in judged), judged
    assert "n/a (quick)" in finished.stdout
    assert "FAIL" not in finished.stdout and "PASS" not in finished.stdout


@pytest.mark.slow
def test_write_throughput_compares_orders_per_second(bench_run):
    _, records = bench_run
    (record,) = [r for r in records if r["name"] == "write-throughput:orders.place_order"]
    assert (record["clients"], record["workers"]) == (8, 4)
    assert record["errors"] == {"baseline": 0, "candidate": 0}, record
    assert record["orders"]["baseline"] > 0 and record["orders"]["candidate"] > 0, record
    expected = record["candidate_per_s"] / record["baseline_per_s"]
    assert record["value"] == pytest.approx(expected, rel=0.01), record


@pytest.mark.slow
def test_refresh_throughput_applies_every_key_an_outside_update_changed(bench_run):
    _, records = bench_run
    (record,) = [r for r in records if r["name"] == "refresh-throughput"]
    assert record["unit"] == "keys/s"
    assert record["target"] == "n/a" and "pass" not in record  # no legacy counterpart
    assert record["errors"] == {"failed_models": 0, "left_pending": 0}, record
    assert 0 < record["lines"] <= record["lines_wanted"] == 1000
    assert record["keys"] == sum(model["keys"] for model in record["models"].values()) > 0
    assert record["value"] == pytest.approx(record["keys"] / record["seconds"], rel=0.01)
    # Order lines feed the catalog, the customers' and the sales read models.
    assert {"catalog", "customer_orders", "daily_sales"} <= set(record["models"])
