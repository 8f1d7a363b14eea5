"""Changing an endpoint's stage: the one flow the CLI, the admin API and demotion share.

Validate the request, do nothing if it changes nothing, ask the promotion gate when a
read endpoint would serve (more of) its read models, store the change with its audit
row (compare-and-set: a change judged on stale state is refused), and log it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core import logs
from ..core.errors import ValidationFailed
from ..core.registry import Registry
from .flags import FlagState, FlagStore
from .gate import Gate
from .stages import (
    GATED_STAGES,
    STAGES,
    check_stage,
    validate_percent,
    validate_sample_rate,
)

MAX_REASON_LENGTH = 2000


@dataclass(frozen=True, slots=True)
class StageChange:
    before: FlagState
    after: FlagState

    @property
    def changed(self) -> bool:
        return self.after.version != self.before.version


class StageChanges:
    def __init__(self, registry: Registry, flags: FlagStore, gate: Gate) -> None:
        self._registry = registry
        self._flags = flags
        self._gate = gate

    def change(
        self,
        endpoint: str,
        stage: str,
        *,
        percent: float | None = None,
        sample_rate: float | None = None,
        actor: str,
        reason: str,
        force: bool = False,
        only_from: str | None = None,
    ) -> StageChange:
        """Move ``endpoint`` to ``stage``, audited.

        Omitted ``percent``: kept when the stage stays, else 100 (re-setting a stage must
        not silently widen a partial rollout). Omitted ``sample_rate``: kept. ``force``
        overrides the gate (and is recorded as such). ``only_from``: change only if the
        stored stage is still this one (automatic demotion: one worker demotes, the
        others find it done). A change that changes nothing is not recorded.
        """
        kind = self._registry.endpoint(endpoint).kind
        check_stage(kind, stage)
        new_percent = None if percent is None else validate_percent(percent)
        new_rate = None if sample_rate is None else validate_sample_rate(sample_rate)
        actor, reason = (actor or "").strip(), (reason or "").strip()
        if not actor:
            raise ValidationFailed("say who makes the change", field="actor")
        if not reason:
            raise ValidationFailed("say why: the reason is kept in the audit log", field="reason")
        if len(reason) > MAX_REASON_LENGTH:
            raise ValidationFailed(f"at most {MAX_REASON_LENGTH} characters", field="reason")

        before = self._flags.get(endpoint)
        if only_from is not None and before.stage != only_from:
            return StageChange(before, before)
        to_percent = new_percent if new_percent is not None else _kept_percent(before, stage)
        to_rate = new_rate if new_rate is not None else before.sample_rate
        if (stage, to_percent, to_rate) == (before.stage, before.percent, before.sample_rate):
            return StageChange(before, before)
        if (
            kind == "read"
            and stage in GATED_STAGES
            and not force
            and _serves_more(before, stage, to_percent)
        ):
            self._gate.check(endpoint, stage)
        after = self._flags.record(
            before, stage, to_percent, to_rate, actor=actor, reason=reason, forced=force
        )
        logs.flags.warning(
            "flag %s: %s %g%% -> %s %g%% by %s%s (%s)",
            endpoint,
            before.stage,
            before.percent,
            after.stage,
            after.percent,
            actor,
            " FORCED" if force else "",
            reason,
        )
        return StageChange(before, after)


def _serves_more(before: FlagState, stage: str, percent: float) -> bool:
    """Whether the change gives the read model more of the traffic: a later stage, or a
    wider percentage at the same one (complete -> live, say, is a step back: not gated)."""
    order = STAGES["read"]
    if order.index(stage) != order.index(before.stage):
        return order.index(stage) > order.index(before.stage)
    return percent > before.percent


def _kept_percent(before: FlagState, stage: str) -> float:
    return before.percent if stage == before.stage else 100.0
