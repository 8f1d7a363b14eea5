"""The one rule for "ready to promote", used by the gate, ``flask cqrs report`` and the
admin API alike.

An endpoint is ready when its newest ``CQRS_COMPARISON_WINDOW`` comparisons hold at least
``CQRS_PROMOTION_MIN_COMPARISONS`` and none of them is a mismatch or an error (on either
path, timeouts and fallbacks included). Zero comparisons is not "no mismatches": it is
not ready.
"""

from __future__ import annotations

from dataclasses import dataclass

from .history import Window


@dataclass(frozen=True, slots=True)
class Readiness:
    ready: bool
    #: What is missing; empty when ready.
    problems: tuple[str, ...]
    window: Window

    @property
    def why(self) -> str:
        if self.ready:
            return f"{self.window.samples} comparisons in a row matched, no errors"
        return "; ".join(self.problems)


def readiness(window: Window, *, min_comparisons: int) -> Readiness:
    problems = []
    if window.samples < min_comparisons:
        problems.append(f"{window.samples} of the {min_comparisons} comparisons it needs")
    if window.mismatches:
        problems.append(f"{window.mismatches} mismatch(es) in the last {window.samples}")
    if window.new_errors:
        problems.append(f"{window.new_errors} new-path error(s) in the last {window.samples}")
    if window.legacy_errors:
        problems.append(f"{window.legacy_errors} legacy error(s) in the last {window.samples}")
    return Readiness(not problems, tuple(problems), window)
