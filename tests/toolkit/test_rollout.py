"""Stages, validation, sticky bucketing and the per-request Route decision."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from itertools import count
from typing import Any

import pytest
from flask import Flask, Request, request

from cqrs_layer import ValidationFailed
from cqrs_layer.rollout.stages import (
    Route,
    bucket,
    check_stage,
    decide,
    in_rollout,
    subject_reader,
    validate_percent,
    validate_sample_rate,
)

from .helpers import settings

SUBJECTS = [f"user-{n}" for n in range(2000)]


def route(
    stage: str,
    kind: str = "read",
    *,
    percent: float = 100.0,
    sample_rate: float = 1.0,
    subject: str = "alice",
    dice: float = 0.5,
) -> Route:
    return decide("shop.items", kind, stage, percent, sample_rate, lambda: subject, lambda: dice)


def test_each_read_stage_decides_per_the_contract() -> None:
    assert route("legacy") == Route("legacy", serve_new=False, compare=False, fallback=False)
    assert route("shadow") == Route("shadow", serve_new=False, compare=True, fallback=False)
    assert route("live") == Route("live", serve_new=True, compare=True, fallback=True)
    assert route("complete") == Route("complete", serve_new=True, compare=False, fallback=True)


def test_sampling_compares_only_below_the_sample_rate() -> None:
    assert route("shadow", sample_rate=0.25, dice=0.24).compare is True
    assert route("shadow", sample_rate=0.25, dice=0.25).compare is False
    assert route("live", sample_rate=0.0, dice=0.0).compare is False
    assert route("shadow", sample_rate=1.0, dice=0.999).compare is True


def test_live_outside_the_bucket_serves_legacy_and_still_compares() -> None:
    outside = next(s for s in SUBJECTS if bucket("shop.items", s) >= 1000)
    inside = next(s for s in SUBJECTS if bucket("shop.items", s) < 1000)
    assert route("live", percent=10, subject=outside) == Route("live", False, True, True)
    assert route("live", percent=10, subject=inside) == Route("live", True, True, True)


def test_write_stages_follow_the_percentage() -> None:
    assert route("legacy", "write") == Route("legacy", False, False, False)
    assert route("command", "write") == Route("command", True, False, False)
    assert route("command", "write", percent=0) == Route("command", False, False, False)


def test_the_subject_is_only_read_when_a_percentage_needs_it() -> None:
    calls = count()

    def subject() -> str:
        next(calls)
        return "alice"

    for stage in ("legacy", "shadow", "complete"):
        decide("e", "read", stage, 50.0, 1.0, subject, lambda: 0.5)
    assert next(calls) == 0
    decide("e", "read", "live", 50.0, 1.0, subject, lambda: 0.5)
    assert next(calls) == 2  # one call, then this next()


def test_buckets_are_stable_and_spread_evenly() -> None:
    assert bucket("shop.items", "alice") == bucket("shop.items", "alice")
    assert 0 <= bucket("shop.items", "alice") < 10_000
    # Another endpoint buckets the same subject independently.
    assert [bucket("a", s) for s in SUBJECTS[:50]] != [bucket("b", s) for s in SUBJECTS[:50]]
    in_quarter = sum(in_rollout("shop.items", s, 25) for s in SUBJECTS)
    assert 400 <= in_quarter <= 600  # 25% of 2000 = 500, give or take the hash's noise


def test_buckets_are_the_same_in_another_process_with_another_hash_seed() -> None:
    here = [bucket("shop.items", s) for s in SUBJECTS[:20]]
    code = (
        "from cqrs_layer.rollout.stages import bucket;"
        "print([bucket('shop.items', f'user-{n}') for n in range(20)])"
    )
    there = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONHASHSEED": "12345"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert there.strip() == str(here)


def test_raising_the_percentage_only_adds_subjects() -> None:
    previous: set[str] = set()
    for percent in (0, 0.5, 1, 5, 10, 33.3, 50, 99.99, 100):
        current = {s for s in SUBJECTS if in_rollout("shop.items", s, percent)}
        assert previous <= current, f"someone left the rollout at {percent}%"
        previous = current
    assert previous == set(SUBJECTS)


def test_zero_and_hundred_percent_are_absolute() -> None:
    assert not any(in_rollout("e", s, 0) for s in SUBJECTS)
    assert all(in_rollout("e", s, 100) for s in [*SUBJECTS, ""])


@pytest.mark.parametrize(
    ("kind", "stage"),
    [
        ("read", "legacy"),
        ("read", "shadow"),
        ("read", "live"),
        ("read", "complete"),
        ("write", "legacy"),
        ("write", "command"),
    ],
)
def test_valid_stages_pass_the_check(kind: Any, stage: str) -> None:
    assert check_stage(kind, stage) == stage


@pytest.mark.parametrize(
    ("kind", "stage"),
    [
        ("read", "command"),
        ("write", "shadow"),
        ("write", "read-model"),
        ("read", "LIVE"),
        ("read", "read-model"),  # the old alias of "complete" is gone
    ],
)
def test_a_stage_the_kind_has_not_is_refused_naming_the_field(kind: Any, stage: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        check_stage(kind, stage)
    assert refused.value.fields[0]["field"] == "stage"
    assert f"{stage!r} is not a stage of a {kind} endpoint" in refused.value.message


@pytest.mark.parametrize("bad", [-0.1, 100.01, float("nan"), "50", True, None])
def test_percent_outside_0_to_100_is_refused(bad: object) -> None:
    with pytest.raises(ValidationFailed) as refused:
        validate_percent(bad)
    assert refused.value.fields == [{"field": "percent", "reason": refused.value.message}]


@pytest.mark.parametrize("bad", [-0.01, 1.01, float("inf"), "0.5", False])
def test_sample_rate_outside_0_to_1_is_refused(bad: object) -> None:
    with pytest.raises(ValidationFailed) as refused:
        validate_sample_rate(bad)
    assert refused.value.fields[0]["field"] == "sample_rate"


def test_edges_are_accepted() -> None:
    assert (validate_percent(0), validate_percent(100), validate_percent(12.5)) == (0, 100, 12.5)
    assert (validate_sample_rate(0), validate_sample_rate(1)) == (0.0, 1.0)


def tenant_of(request: Request) -> str | None:
    return request.headers.get("X-Tenant")


def subject_of(config: Mapping[str, object], headers: dict[str, str], address: str) -> str:
    read = subject_reader(settings(**config))
    with Flask(__name__).test_request_context(
        headers=headers, environ_base={"REMOTE_ADDR": address}
    ):
        return read(request)


def test_subject_key_comes_from_the_header_else_the_client_address() -> None:
    by_header = {"CQRS_SUBJECT_HEADER": "X-User"}
    assert subject_of(by_header, {"X-User": "u-7"}, "1.2.3.4") == "u-7"
    assert subject_of(by_header, {"X-CQRS-Subject": "s-1"}, "1.2.3.4") == "1.2.3.4"
    assert subject_of({}, {"X-CQRS-Subject": "s-1"}, "1.2.3.4") == "s-1"
    assert subject_of({}, {}, "1.2.3.4") == "1.2.3.4"


@pytest.mark.parametrize("configured", [tenant_of, f"{__name__}:tenant_of"])
def test_subject_key_can_be_a_callable_or_an_import_string(configured: object) -> None:
    config = {"CQRS_SUBJECT_KEY": configured}
    assert subject_of(config, {"X-Tenant": "acme"}, "9.9.9.9") == "acme"
    assert subject_of(config, {}, "9.9.9.9") == "9.9.9.9"  # no answer: the client address
