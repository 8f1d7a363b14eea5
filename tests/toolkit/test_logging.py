"""The toolkit reports its findings through ``logging``, one logger per concern under
``cqrs``, and never writes to the terminal itself: the app decides where they go."""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from cqrs_layer.core import logs

PACKAGE = Path(__file__).resolve().parents[2] / "cqrs_layer"
#: The CLI is the one place that talks to a terminal (through click).
TERMINAL = PACKAGE / "ops" / "cli"


def test_one_logger_per_concern_under_cqrs_with_a_null_handler() -> None:
    assert sorted(logger.name for logger in logs.LOGGERS) == [
        "cqrs.comparison",
        "cqrs.demotion",
        "cqrs.events",
        "cqrs.fallback",
        "cqrs.flags",
        "cqrs.guard",
        "cqrs.projection",
        "cqrs.refresh",
        "cqrs.writes",
    ]
    assert any(isinstance(h, logging.NullHandler) for h in logging.getLogger("cqrs").handlers)


def test_every_module_logs_through_the_concern_loggers() -> None:
    """No module-named logger (``cqrs_layer.x.y``) and no raw writes to the terminal:
    ``print``, ``sys.stderr.write``, ``warnings.warn`` bypass the app's logging set-up."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if TERMINAL in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call):
                called = ast.unparse(node.func)
                if called in ("print", "sys.stderr.write", "sys.stdout.write", "warnings.warn"):
                    found.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {called}")
                if called == "logging.getLogger" and path.name != "logs.py":
                    found.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {called}")
    assert found == []


def test_a_write_guard_finding_can_be_asserted_with_caplog(
    toy_client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="cqrs.guard"):
        toy_client.post("/library/books", json={"title": "Dune", "copies": 1})
    assert [(r.name, r.levelname) for r in caplog.records] == [("cqrs.guard", "WARNING")]
    assert caplog.records[0].getMessage() == (
        "write to books outside a command (endpoint library.add_book): read models kept "
        "only by projections will not hear of it"
    )
