"""The benchmark's verdicts: upper and lower bounds, and a --quick run judging nothing."""

from __future__ import annotations

import math

from bench.report import (
    Target,
    figure_record,
    problems,
    table,
    throughput_target,
)


def test_an_upper_bound_is_met_at_or_below_its_limit():
    target = Target(1.5, inclusive=True)
    assert target.describe() == "<= 1.5"
    assert target.met(1.5) and target.met(0.2)
    assert not target.met(1.51) and not target.met(math.nan)
    assert not Target(10, inclusive=False).met(10)


def test_a_lower_bound_is_met_at_or_above_its_limit():
    target = throughput_target()
    assert target.describe(" x") == ">= 0.8 x"
    assert target.met(0.8) and target.met(1.7)
    assert not target.met(0.79) and not target.met(math.nan)
    assert not Target(0.8, inclusive=False, higher_is_better=True).met(0.8)


def _throughput(value: float, *, quick: bool = False, errors: int = 0) -> dict:
    return figure_record(
        "write-throughput:orders.place_order",
        "sqlite",
        value,
        "x",
        throughput_target(),
        quick=quick,
        errors={"baseline": 0, "candidate": errors},
    )


def test_throughput_passes_above_its_target_and_fails_below_or_with_errors():
    assert _throughput(1.2)["pass"] is True
    assert _throughput(0.5)["pass"] is False
    assert _throughput(1.2, errors=1)["pass"] is False
    assert problems([_throughput(0.5)]) == [
        "FAIL write-throughput:orders.place_order [sqlite]: target >= 0.8 x not met"
    ]


def test_a_quick_run_records_the_target_and_judges_nothing():
    record = _throughput(0.5, quick=True)
    assert (record["target"], record["pass"]) == (">= 0.8 x", None)
    assert problems([record]) == []
    backfill = figure_record("backfill", "sqlite", 12.0, "s", Target(10, False), quick=True)
    printed = table([backfill], quick=True)
    assert "n/a (quick)" in printed and "FAIL" not in printed
    # Errors are still reported in a quick run.
    assert problems([_throughput(0.5, quick=True, errors=2)])[0].startswith("ERRORS")
