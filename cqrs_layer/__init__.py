"""cqrs_layer: move a Flask + SQLAlchemy app to CQRS one endpoint at a time.

The names below are the public surface; every other module may change.
"""

from . import errors, signals
from .bus import CommandBus, QueryBus
from .compare import CompareOptions
from .correlation import correlation_scope, current_correlation_id
from .errors import (
    CommandRejected,
    ConcurrencyConflict,
    DomainRuleViolated,
    NotFound,
    UnguardedWriteError,
    ValidationFailed,
)
from .ext import CQRS, CQRSState
from .flags import FlagState, FlagStore
from .gate import PromotionRefused
from .guard import WriteGuard, allow_unguarded_writes
from .messages import Command, Event, Query
from .outbox import StoredEvent
from .projections import Projection, ProjectionContext, ProjectionDispatcher
from .readmodel import ReadModel
from .rollout import Route
from .routing import ModeSource, StaticModeSource
from .uow import UnitOfWork

__all__ = [
    "CQRS",
    "CQRSState",
    "Command",
    "CommandBus",
    "CommandRejected",
    "CompareOptions",
    "ConcurrencyConflict",
    "DomainRuleViolated",
    "Event",
    "FlagState",
    "FlagStore",
    "ModeSource",
    "NotFound",
    "Projection",
    "ProjectionContext",
    "ProjectionDispatcher",
    "PromotionRefused",
    "Query",
    "QueryBus",
    "ReadModel",
    "Route",
    "StaticModeSource",
    "StoredEvent",
    "UnguardedWriteError",
    "UnitOfWork",
    "ValidationFailed",
    "WriteGuard",
    "allow_unguarded_writes",
    "correlation_scope",
    "current_correlation_id",
    "errors",
    "signals",
]
