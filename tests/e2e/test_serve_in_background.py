"""``scripts/serve-in-background.sh start`` reports success only when ITS server answers: a
port another server holds is a clear failure, not a healthy answer from someone else."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from legacy_app.migrate import upgrade_database

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "scripts" / "serve-in-background.sh"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def environment(tmp_path: Path) -> dict[str, str]:
    database = f"sqlite:///{tmp_path}/shop.db"
    upgrade_database(database)
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "DATABASE_URL": database,
        "PORT": str(free_port()),
        "SHOP_LOG": str(tmp_path / "shop.log"),
    }


def script(command: str, environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), command], env=environment, capture_output=True, text=True, timeout=90
    )


@pytest.fixture
def served(environment: dict[str, str]) -> Iterator[dict[str, str]]:
    yield environment
    script("stop", environment)


def test_start_waits_for_its_own_server_and_stop_stops_it(served: dict[str, str]) -> None:
    started = script("start", served)
    assert started.returncode == 0, started.stderr
    pid = int(Path(served["SHOP_LOG"] + ".pid").read_text())
    url = f"http://127.0.0.1:{served['PORT']}"
    assert started.stdout == f"serving {url} (pid {pid}, log {served['SHOP_LOG']})\n"
    with urllib.request.urlopen(f"{url}/healthz", timeout=10) as response:
        assert response.status == 200
    assert script("stop", served).stdout == f"stopped (pid {pid})\n"
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_port_another_server_holds_is_a_clear_failure(served: dict[str, str]) -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", int(served["PORT"])))
        other.listen()
        started = script("start", served)
    assert started.returncode == 1
    assert started.stdout == ""
    assert started.stderr == (
        f"port {served['PORT']} is already in use on 127.0.0.1 (another server?): stop it, "
        f"or start on another port: PORT=<free port> {SCRIPT} start\n"
    )
    assert not Path(served["SHOP_LOG"] + ".pid").exists()


def test_a_server_that_cannot_start_is_a_clear_failure(served: dict[str, str]) -> None:
    """Its log's end says why (here: the app cannot be imported)."""
    started = script("start", {**served, "SHOP_APP": "no_such_module:app"})
    assert started.returncode == 1
    assert started.stderr.startswith(
        f"the shop did not start on http://127.0.0.1:{served['PORT']}; the end of "
        f"{served['SHOP_LOG']}:\n"
    )
    assert "Worker failed to boot" in started.stderr
    assert not Path(served["SHOP_LOG"] + ".pid").exists()
