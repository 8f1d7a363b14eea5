"""Automatic demotion: a ``live`` read endpoint that goes wrong is put back to ``shadow``.

After each recorded comparison or fallback, the endpoint's newest
``CQRS_COMPARISON_WINDOW`` rows recorded while it was ``live`` (since its flag last
changed, so a fresh promotion starts with a fresh window) are judged: with at least
``CQRS_DEMOTION_MIN_COMPARISONS`` of them, a mismatch rate above
``CQRS_DEMOTION_MISMATCH_RATE`` or a new-path error rate above ``CQRS_DEMOTION_ERROR_RATE``
demotes it through the stage-change flow, so the change is audited (actor
``auto-demotion``), recorded once however many workers notice, and reaches every process
like any other.
"""

from __future__ import annotations

from ..core import logs
from ..core.errors import ConcurrencyConflict
from ..core.settings import Settings
from .changes import StageChanges
from .flags import FlagStore
from .history import ComparisonHistory, Window
from .stages import LIVE, SHADOW

ACTOR = "auto-demotion"


class Demotion:
    def __init__(
        self,
        flags: FlagStore,
        changes: StageChanges,
        history: ComparisonHistory,
        settings: Settings,
    ) -> None:
        self._flags = flags
        self._changes = changes
        self._history = history
        self._settings = settings

    def check(self, endpoint: str) -> bool:
        """Demote ``endpoint`` to shadow if its live window fails; True if this call did."""
        flag = self._flags.get(endpoint)
        if flag.stage != LIVE:
            return False
        settings = self._settings
        judged = self._history.window(
            endpoint, settings.comparison_window, stage=LIVE, since=flag.updated_at
        )
        reason = failing_reason(
            judged,
            min_samples=settings.demotion_min_comparisons,
            max_mismatch_rate=settings.demotion_mismatch_rate,
            max_error_rate=settings.demotion_error_rate,
        )
        if reason is None:
            return False
        try:
            # Moving down to shadow is never gated; only_from keeps it to one demotion.
            change = self._changes.change(
                endpoint, SHADOW, actor=ACTOR, reason=reason, only_from=LIVE
            )
        except ConcurrencyConflict:
            return False  # another worker changed the flag in between; its change stands
        if change.changed:
            logs.demotion.warning("auto-demoted %s from live to shadow: %s", endpoint, reason)
        return change.changed


def failing_reason(
    judged: Window,
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
