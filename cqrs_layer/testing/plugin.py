"""The pytest plugin: run your own test suite with your endpoints at a stage.

Enable it in your ``conftest.py`` and hand the harness to your app fixture::

    pytest_plugins = ["cqrs_layer.testing.plugin"]

    @pytest.fixture
    def app(cqrs_harness):
        app = create_app({"TESTING": True, **cqrs_harness.settings})
        cqrs_harness.install(app)
        yield app

Then ``pytest --cqrs-read-stage=shadow`` (or ``live``, ``complete``) runs every test with
every wrapped read endpoint at that stage and fails any test whose request got an answer
from the new path that differs from legacy's; ``--cqrs-write-stage=command`` serves the
wrapped writes through their commands. Without the options the suite runs as before.
"""

from __future__ import annotations

import pytest

from ..rollout.stages import STAGES
from .harness import CQRSHarness


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cqrs", "cqrs_layer: run the suite with endpoints at a stage")
    group.addoption(
        "--cqrs-read-stage",
        choices=STAGES["read"],
        default=None,
        help="serve every wrapped read endpoint at this stage; any answer differing from "
        "legacy fails the test",
    )
    group.addoption(
        "--cqrs-write-stage",
        choices=STAGES["write"],
        default=None,
        help="serve every wrapped write endpoint at this stage",
    )
    parser.addini("cqrs_read_stage", "default for --cqrs-read-stage", default=None)
    parser.addini("cqrs_write_stage", "default for --cqrs-write-stage", default=None)


def harness_for(config: pytest.Config) -> CQRSHarness:
    """The stages chosen for this run (e.g. to parametrize your own fixtures with)."""
    return CQRSHarness(_chosen(config, "read"), _chosen(config, "write"))


def _chosen(config: pytest.Config, name: str) -> str | None:
    value = config.getoption(f"--cqrs-{name}-stage") or config.getini(f"cqrs_{name}_stage")
    return str(value) if value else None


def pytest_report_header(config: pytest.Config) -> str | None:
    harness = harness_for(config)
    if not harness.active:
        return None
    read, write = harness.read_stage or "legacy", harness.write_stage or "legacy"
    return f"cqrs_layer: reads at {read}, writes at {write}"


@pytest.fixture
def cqrs_harness(pytestconfig: pytest.Config) -> CQRSHarness:
    return harness_for(pytestconfig)
