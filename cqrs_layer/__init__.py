"""cqrs_layer: move a Flask + SQLAlchemy app to CQRS one endpoint at a time.

The names below are the public surface, grouped by role. Besides them, three public
modules: :mod:`cqrs_layer.sql` (SQL helpers for projections), :mod:`cqrs_layer.schema`
(the toolkit's tables for your migrations) and :mod:`cqrs_layer.testing` (a pytest
plugin). Everything else (the ``core``, ``write``, ``read``, ``rollout`` and ``ops``
layers, ``_ext``) is private and may change.
"""

from ._ext import CQRS
from .core import signals
from .core.correlation import current_correlation_id
from .core.errors import (
    CommandRejected,
    ConcurrencyConflict,
    Decline,
    DomainRuleViolated,
    NotFound,
    ValidationFailed,
)
from .core.messages import Command, Event, Query
from .core.read_model import ReadModel
from .read.projections import Projection, ProjectionContext
from .rollout.diff import ComparisonOptions
from .write.guard import allow_unguarded_writes
from .write.uow import UnitOfWork

__all__ = [  # noqa: RUF022 (grouped by role, not sorted)
    # the extension
    "CQRS",
    # messages: what you write
    "Command",
    "Event",
    "Query",
    # the write side
    "UnitOfWork",
    "allow_unguarded_writes",
    # the read side
    "Projection",
    "ProjectionContext",
    "ReadModel",
    # comparing the two read paths
    "ComparisonOptions",
    # a build handing a request back to the legacy view
    "Decline",
    # refusals a handler raises (each becomes a 4xx)
    "CommandRejected",
    "ConcurrencyConflict",
    "DomainRuleViolated",
    "NotFound",
    "ValidationFailed",
    # observing
    "current_correlation_id",
    "signals",
]
