"""A/B measurement: the same request to the legacy and the new server, alternating.

Each sample is a pair. The order inside a pair flips every time (AB, BA, AB, ...), so
caches warmed by the first request, a burst of background load or a slow drift of the
machine land on both sides equally. Every reply must come from the path its server is
meant to serve (``X-CQRS-Served-By``): a misconfigured server aborts the run instead of
producing a ratio of legacy against legacy.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .client import Reply
from .servers import Server


class WrongPath(RuntimeError):
    """A server answered from a path other than the one it is configured for."""


@dataclass(frozen=True)
class Side:
    label: str  # "legacy" (baseline) or "new" (candidate)
    server: Server
    #: What ``X-CQRS-Served-By`` must say; None: no header at all (an unwrapped endpoint).
    expected: str | None
    #: Also accept a missing header (A/A runs against an app without the CQRS wiring).
    allow_missing_header: bool = False

    def check(self, name: str, reply: Reply) -> None:
        served = reply.served_by
        if served == self.expected or (served is None and self.allow_missing_header):
            return
        shown = "no X-CQRS-Served-By header" if served is None else f"served by {served!r}"
        wanted = "no header (unwrapped)" if self.expected is None else repr(self.expected)
        raise WrongPath(
            f"{name}: the {self.label} server (port {self.server.port}) answered with "
            f"{shown}, expected {wanted}. Its environment did not put the endpoint "
            "on that path (is the CQRS wiring installed in create_app, and does the config "
            "read FLASK_CQRS_DEFAULT_READ_STAGE / _WRITE_STAGE?). Refusing to report a "
            "ratio that would not compare the two paths."
        )


@dataclass(frozen=True)
class Budget:
    samples: int  # pairs wanted
    min_samples: int  # pairs always taken, whatever the time
    seconds: float  # per measurement: stop adding pairs after this (once min is reached)
    warmup: int  # untimed pairs first


@dataclass
class Comparison:
    name: str
    params: str
    baseline_ms: list[float] = field(default_factory=list)
    candidate_ms: list[float] = field(default_factory=list)
    baseline_errors: int = 0
    candidate_errors: int = 0
    first_error: str | None = None
    mismatches: int = 0
    first_mismatch: str | None = None
    compared_bodies: bool = False

    @property
    def pairs(self) -> int:
        return max(len(self.baseline_ms), len(self.candidate_ms))


#: ``act(index, side)`` sends the index-th request of a measurement to one side.
Act = Callable[[int, Side], Reply]


def run_ab(
    name: str,
    params: str,
    baseline: Side,
    candidate: Side,
    act: Act,
    budget: Budget,
    *,
    ok_status: int,
    compare_bodies: bool,
    available: int | None = None,
) -> Comparison:
    """Warm up, then take pairs until the sample count or the time budget is reached.

    ``available`` caps the number of requests per side (e.g. orders left to pay); warm-up
    uses the first indexes.
    """
    result = Comparison(name, params, compared_bodies=compare_bodies)
    limit = budget.warmup + budget.samples if available is None else available
    index = 0
    for _ in range(min(budget.warmup, max(0, limit - budget.min_samples))):
        for side in (baseline, candidate):
            side.check(name, act(index, side))
        index += 1
    started = time.perf_counter()
    pair = 0
    while index < limit and pair < budget.samples:
        if pair >= budget.min_samples and time.perf_counter() - started > budget.seconds:
            break
        order = (baseline, candidate) if pair % 2 == 0 else (candidate, baseline)
        replies: dict[str, Reply] = {}
        for side in order:
            reply = act(index, side)
            side.check(name, reply)
            replies[side.label] = reply
        _record(result, replies[baseline.label], replies[candidate.label], ok_status)
        index += 1
        pair += 1
    return result


def _record(result: Comparison, base: Reply, cand: Reply, ok_status: int) -> None:
    for reply, timings, side in (
        (base, result.baseline_ms, "legacy"),
        (cand, result.candidate_ms, "new"),
    ):
        if reply.status == ok_status:
            timings.append(reply.ms)
            continue
        if side == "legacy":
            result.baseline_errors += 1
        else:
            result.candidate_errors += 1
        if result.first_error is None:
            result.first_error = f"{side}: HTTP {reply.status} {reply.body[:300]!r}"
    if result.compared_bodies and base.status == cand.status == ok_status:
        difference = first_difference(json.loads(base.body), json.loads(cand.body))
        if difference is not None:
            result.mismatches += 1
            if result.first_mismatch is None:
                result.first_mismatch = difference


def first_difference(legacy: Any, new: Any, where: str = "$") -> str | None:
    """Where two JSON documents first differ, e.g. ``$.items[3].avg_rating: 4.5 != 4.51``."""
    if isinstance(legacy, dict) and isinstance(new, dict):
        if list(legacy) != list(new):
            return f"{where}: keys {list(legacy)} != {list(new)}"
        for key in legacy:
            found = first_difference(legacy[key], new[key], f"{where}.{key}")
            if found:
                return found
        return None
    if isinstance(legacy, list) and isinstance(new, list):
        if len(legacy) != len(new):
            return f"{where}: {len(legacy)} items != {len(new)} items"
        for position, (a, b) in enumerate(zip(legacy, new, strict=True)):
            found = first_difference(a, b, f"{where}[{position}]")
            if found:
                return found
        return None
    if type(legacy) is not type(new) or legacy != new:
        return f"{where}: legacy {legacy!r} != new {new!r}"
    return None


def percentile(values: Sequence[float], fraction: float) -> float:
    """Linear interpolation between closest ranks (numpy's default method)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
