"""What ``GET /healthz`` checks besides a round trip: that the database holds the schema
this code needs. A server started before its migrations ran would answer 500s; a 503
keeps a load balancer's traffic away from it until they have run.

Each check takes a connection and returns what is wrong, or None. The shop checks its
alembic head (added in ``create_app``); its migration to CQRS adds the toolkit's tables.
Once every check passes, a process stops checking: schemas move forward with deploys,
not under a running server, and ``/healthz`` stays one ``SELECT 1`` (the benchmarks'
HTTP floor).
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from sqlalchemy import Connection

SchemaCheck = Callable[[Connection], str | None]

_CHECKS = "health.schema_checks"
_PASSED = "health.schema_passed"


def add_schema_check(app: Flask, check: SchemaCheck) -> None:
    app.extensions.setdefault(_CHECKS, []).append(check)


def schema_problem(app: Flask, connection: Connection) -> str | None:
    """The first problem a check finds, or None (remembered once all pass)."""
    if app.extensions.get(_PASSED):
        return None
    for check in app.extensions.get(_CHECKS, ()):
        problem = check(connection)
        if problem:
            return problem
    app.extensions[_PASSED] = True
    return None
