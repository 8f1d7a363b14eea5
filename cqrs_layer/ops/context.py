"""One app's toolkit as the operator's tools see it: the parts the extension built.

Only this layer, the extension that fills it and the testing plugin read it; the parts
below take what they need from the extension directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app
from sqlalchemy import Engine

from ..core.registry import Registry
from ..core.settings import Settings
from ..read.capture import CaptureStatus
from ..read.projections import ProjectionDispatcher
from ..read.queries import QueryBus
from ..rollout.changes import StageChanges
from ..rollout.comparisons import Comparisons
from ..rollout.flags import FlagStore
from ..rollout.gate import Gate
from ..rollout.history import ComparisonHistory
from ..rollout.routing import Router
from ..write.bus import CommandBus
from ..write.guard import WriteGuard

EXTENSION_KEY = "cqrs"


@dataclass(frozen=True)
class Toolkit:
    settings: Settings
    registry: Registry
    engine: Engine
    command_bus: CommandBus
    query_bus: QueryBus
    projections: ProjectionDispatcher
    guard: WriteGuard
    flags: FlagStore
    history: ComparisonHistory
    gate: Gate
    changes: StageChanges
    comparisons: Comparisons
    router: Router
    captures: CaptureStatus


def toolkit_of(app: Flask | None = None) -> Toolkit:
    """The toolkit of ``app`` (default: the current app)."""
    target: Any = app or current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        toolkit: Toolkit = target.extensions[EXTENSION_KEY]
    except KeyError:
        raise RuntimeError(f"CQRS.init_app was not called for app {target.name!r}") from None
    return toolkit
