"""Automatic demotion: a ``live`` read endpoint that goes wrong is put back to ``shadow``.

After each recorded comparison or fallback, the endpoint's newest
``CQRS_DEMOTION_WINDOW`` rows recorded while it was ``live`` (since its flag last
changed, so a fresh promotion starts with a fresh window) are judged: with at least
``CQRS_DEMOTION_MIN_SAMPLES`` of them, a mismatch rate above
``CQRS_DEMOTION_MISMATCH_RATE`` or a new-path error rate above ``CQRS_DEMOTION_ERROR_RATE``
demotes it through the flag store, so the change is audited (actor ``auto-demotion``) and
reaches every process like any other; it is also logged at WARNING.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from flask import Flask

from . import comparisons
from .comparisons import setting
from .errors import ConcurrencyConflict
from .rollout import LIVE, SHADOW

if TYPE_CHECKING:
    from .ext import CQRSState

log = logging.getLogger(__name__)

ACTOR = "auto-demotion"


def demote_if_failing(app: Flask, state: CQRSState, endpoint: str) -> bool:
    """Demote ``endpoint`` to shadow if its live window fails a threshold; True if it did."""
    flag = state.flags.get(endpoint)
    if flag.stage != LIVE:
        return False
    config = app.config
    with state.db.engine.connect() as connection:
        judged = comparisons.window(
            connection,
            endpoint,
            int(setting(config, "CQRS_DEMOTION_WINDOW")),
            stage=LIVE,
            since=flag.updated_at,
        )
    reason = failing_reason(
        judged,
        min_samples=int(setting(config, "CQRS_DEMOTION_MIN_SAMPLES")),
        max_mismatch_rate=float(setting(config, "CQRS_DEMOTION_MISMATCH_RATE")),
        max_error_rate=float(setting(config, "CQRS_DEMOTION_ERROR_RATE")),
    )
    if reason is None:
        return False
    if state.flags.get(endpoint).stage != LIVE:  # another worker got there first
        return False
    try:
        # Moving down to shadow is never gated, so this is not a forced change.
        state.flags.set_stage(endpoint, SHADOW, actor=ACTOR, reason=reason)
    except ConcurrencyConflict:
        return False  # another worker changed the flag in between; its change stands
    log.warning("auto-demoted %s from live to shadow: %s", endpoint, reason)
    return True


def failing_reason(
    judged: comparisons.Window,
    *,
    min_samples: int,
    max_mismatch_rate: float,
    max_error_rate: float,
) -> str | None:
    """Why the window fails, or None if it passes (or is too small to judge)."""
    if judged.samples < max(1, min_samples):
        return None
    if judged.mismatch_rate > max_mismatch_rate:
        return (
            f"mismatch rate {judged.mismatch_rate:.1%} ({judged.mismatches}/{judged.samples}) "
            f"over the last {judged.samples} live comparisons exceeds {max_mismatch_rate:.1%}"
        )
    if judged.error_rate > max_error_rate:
        return (
            f"new-path error rate {judged.error_rate:.1%} ({judged.new_errors}/{judged.samples}) "
            f"over the last {judged.samples} live comparisons exceeds {max_error_rate:.1%}"
        )
    return None
