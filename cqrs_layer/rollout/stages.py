"""Stages, their validation, sticky bucketing, and the per-request decision :class:`Route`.

A read endpoint moves ``legacy → shadow → live → complete``; a write endpoint moves
``legacy → command``. In ``live`` (and ``command``) a percentage of *subjects* is served
the new path. A subject's bucket is a stable hash of endpoint and subject key, so the same
subject gets the same answer in every request and process, and raising the percentage
only adds subjects (bucket < percent·100 stays true for everyone already in).
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Request

from ..core.errors import ValidationFailed
from ..core.registry import EndpointKind
from ..core.settings import Settings

LEGACY = "legacy"
SHADOW = "shadow"
LIVE = "live"
COMPLETE = "complete"
COMMAND = "command"

#: Each kind's stages, in rollout order; the first is the safe fallback.
STAGES: dict[str, tuple[str, ...]] = {
    "read": (LEGACY, SHADOW, LIVE, COMPLETE),
    "write": (LEGACY, COMMAND),
}
#: Stages that serve (some) subjects the new path: a read endpoint entering one is gated.
GATED_STAGES = frozenset({LIVE, COMPLETE})

BUCKETS = 10_000  # percent has a resolution of 0.01


@dataclass(frozen=True, slots=True)
class Route:
    """Which path serves this request, and whether to compare it with the other one.

    ``fallback``: if the new path fails or times out, serve legacy instead.
    """

    stage: str
    serve_new: bool
    compare: bool
    fallback: bool


def next_step(kind: EndpointKind, stage: str, percent: float) -> tuple[str, float | None] | None:
    """Where an endpoint at ``stage`` and ``percent`` goes next in its rollout: the rest of
    its subjects at the same stage, else the following stage (at a percentage yet to
    choose: None); None once it has no further to go."""
    if stage in (LIVE, COMMAND) and percent < 100.0:
        return stage, 100.0
    order = STAGES[kind]
    following = order.index(stage) + 1
    return (order[following], None) if following < len(order) else None


def check_stage(kind: EndpointKind, stage: str) -> str:
    """``stage`` if a ``kind`` endpoint has it, else :class:`ValidationFailed` naming it."""
    if stage not in STAGES[kind]:
        raise ValidationFailed(
            f"{stage!r} is not a stage of a {kind} endpoint; use one of {', '.join(STAGES[kind])}",
            field="stage",
        )
    return stage


def validate_percent(percent: Any) -> float:
    return _number_in_range(percent, "percent", 0.0, 100.0)


def validate_sample_rate(sample_rate: Any) -> float:
    return _number_in_range(sample_rate, "sample_rate", 0.0, 1.0)


def _number_in_range(value: Any, field: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationFailed(f"{field} must be a number from {low:g} to {high:g}", field=field)
    number = float(value)
    if math.isnan(number) or not low <= number <= high:
        raise ValidationFailed(
            f"{field} must be from {low:g} to {high:g}, got {value}", field=field
        )
    return number


def bucket(endpoint: str, subject: str) -> int:
    """The subject's stable bucket for this endpoint, 0..9999 (same in every process:
    Python's ``hash()`` is salted per process, so it cannot be used here)."""
    digest = hashlib.blake2b(f"{endpoint}\x00{subject}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def in_rollout(endpoint: str, subject: str, percent: float) -> bool:
    if percent >= 100.0:
        return True  # also serves requests with no subject key at all
    if percent <= 0.0:
        return False
    return bucket(endpoint, subject) < percent * (BUCKETS // 100)


def decide(
    endpoint: str,
    kind: str,
    stage: str,
    percent: float,
    sample_rate: float,
    subject: Callable[[], str],
    sample: Callable[[], float] = random.random,
) -> Route:
    """The decision for one request. ``subject`` is called only when a percentage needs it."""
    if kind == "write":
        if stage == COMMAND:
            return _ROUTES[COMMAND, _subject_in(endpoint, subject, percent), False, False]
        return _ROUTES[LEGACY, False, False, False]
    if stage == SHADOW:
        return _ROUTES[SHADOW, False, sample() < sample_rate, False]
    if stage == LIVE:
        # Outside the bucket the request is served legacy and compared, as in shadow.
        serve_new = _subject_in(endpoint, subject, percent)
        return _ROUTES[LIVE, serve_new, sample() < sample_rate, True]
    if stage == COMPLETE:
        return _ROUTES[COMPLETE, True, False, True]
    return _ROUTES[LEGACY, False, False, False]


def _subject_in(endpoint: str, subject: Callable[[], str], percent: float) -> bool:
    # At 0 and 100 nobody's subject matters: skip reading it and hashing it.
    if percent >= 100.0:
        return True
    return percent > 0.0 and in_rollout(endpoint, subject(), percent)


# Every possible decision, built once: a frozen dataclass costs ~1 µs to construct,
# more than the rest of the decision.
_ROUTES: dict[tuple[str, bool, bool, bool], Route] = {
    (stage, serve_new, compare, fallback): Route(stage, serve_new, compare, fallback)
    for stage in (LEGACY, SHADOW, LIVE, COMPLETE, COMMAND)
    for serve_new in (False, True)
    for compare in (False, True)
    for fallback in (False, True)
}


def subject_reader(settings: Settings) -> Callable[[Request], str]:
    """How a request's rollout subject is read: ``CQRS_SUBJECT_KEY`` (a function of the
    request) when it gives one, else the ``CQRS_SUBJECT_HEADER`` header, else the client
    address."""
    custom = settings.subject_key
    header = settings.subject_header

    def read_subject(request: Request) -> str:
        if custom is not None:
            value = custom(request)
            if value:
                return str(value)
        return request.headers.get(header) or request.remote_addr or ""

    return read_subject
