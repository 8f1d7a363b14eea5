"""One read endpoint's comparisons in numbers, and whether it is ready to promote, as the
report command and the admin API both show it."""

from __future__ import annotations

from typing import Any

from ..rollout.readiness import readiness
from .context import Toolkit


def endpoint_report(toolkit: Toolkit, endpoint: str, last: int) -> dict[str, Any]:
    settings = toolkit.settings
    flag = toolkit.flags.get(endpoint)
    stats = toolkit.history.stats(endpoint, window_size=settings.comparison_window, last_diffs=last)
    window = stats.window
    ready = readiness(window, min_comparisons=settings.promotion_min_comparisons)
    return {
        "endpoint": endpoint,
        "stage": flag.stage,
        "percent": flag.percent,
        "sample_rate": flag.sample_rate,
        "samples": stats.samples,
        "window": {
            "samples": window.samples,
            "mismatches": window.mismatches,
            "mismatch_rate": window.mismatch_rate,
            "new_errors": window.new_errors,
            "legacy_errors": window.legacy_errors,
            "error_rate": window.error_rate,
        },
        "outcomes": stats.outcomes,
        "latency_ms": {
            "legacy": {"p50": stats.legacy_p50_ms, "p95": stats.legacy_p95_ms},
            "new": {"p50": stats.new_p50_ms, "p95": stats.new_p95_ms},
        },
        "errors": {"legacy": stats.legacy_errors, "new": stats.new_errors},
        "fallbacks": stats.fallbacks,
        "fallback_reasons": stats.fallback_reasons,
        "ready_to_promote": ready.ready,
        "why": ready.why,
        "last_diffs": stats.last_diffs,
    }
