"""Checks a migration's own tests make: read models exact, declared writes true."""

from __future__ import annotations

from typing import Any

from flask import Flask

from ..ops.context import toolkit_of
from ..read.verify import verify
from ..write.guard import NO_REQUEST


def read_model_drift(app: Flask, *, show: int = 5) -> dict[str, dict[str, Any]]:
    """Each registered read model that differs from its source, with the differences:
    drift, and rows behind (changes captured, not applied yet) too. A test has no reason
    to leave changes pending: the app's own writes are applied before they commit, and
    a test's outside writer can run ``flask cqrs refresh`` before it checks."""
    toolkit = toolkit_of(app)
    drift = {}
    for name, model in sorted(toolkit.registry.read_models.items()):
        report = verify(toolkit.engine, model)
        if not report.exact:
            drift[name] = report.to_dict(show=show)
    return drift


def assert_read_models_exact(app: Flask) -> None:
    """Fail, showing the differences, unless every read model equals its source."""
    drift = read_model_drift(app)
    assert not drift, f"read models differ from their source: {drift}"


def undeclared_writes(app: Flask) -> dict[str, set[str]]:
    """Write endpoint -> tables it was seen writing (by the write guard, in this process)
    that it does not declare in ``command_endpoint(writes=[...])``. The promotion gate
    trusts the declarations, so a table missing there could let it promote too early."""
    toolkit = toolkit_of(app)
    problems = {}
    for name, written in toolkit.guard.learned().items():
        endpoint = toolkit.registry.endpoints.get(name)
        if name == NO_REQUEST or endpoint is None or endpoint.kind != "write":
            continue
        missing = set(written) - set(endpoint.writes)
        if missing:
            problems[name] = missing
    return problems


def endpoints_seen_writing(app: Flask) -> set[str]:
    """The wrapped write endpoints the write guard saw writing (in this process)."""
    toolkit = toolkit_of(app)
    return {name for name in toolkit.guard.learned() if name in toolkit.registry.endpoints}
