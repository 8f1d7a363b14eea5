"""Testing an app's migration with the toolkit.

- :mod:`cqrs_layer.testing.plugin`, the pytest plugin: your whole suite with your
  endpoints at ``shadow``/``live``/``complete`` and any difference from legacy a failure;
- :class:`ClosingClient`: a test client that closes responses as servers do (comparisons
  are queued when a response is closed);
- :func:`stage_settings` and :func:`install`: the same harness without the plugin;
- :func:`assert_read_models_exact` / :func:`read_model_drift`: ``verify`` as an assertion,
  e.g. after a property test's random writes;
- :func:`undeclared_writes`: tables a write endpoint wrote but does not declare.
"""

from .checks import (
    assert_read_models_exact,
    endpoints_seen_writing,
    read_model_drift,
    undeclared_writes,
)
from .client import ClosingClient
from .harness import ComparisonCheck, CQRSHarness, install, refuse_fallbacks, stage_settings

__all__ = [
    "CQRSHarness",
    "ClosingClient",
    "ComparisonCheck",
    "assert_read_models_exact",
    "endpoints_seen_writing",
    "install",
    "read_model_drift",
    "refuse_fallbacks",
    "stage_settings",
    "undeclared_writes",
]
