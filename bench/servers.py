"""The shop as real gunicorn servers on loopback, one per path under test."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .client import get

STARTUP_TIMEOUT = 60.0
REPO_ROOT = Path(__file__).resolve().parents[1]
SHOP_APP = "legacy_app:create_app()"
#: The environment that puts every endpoint of a server on one path (read by the shop's
#: config, the Flask way; no flag rows exist in a bench database, so these defaults
#: decide). A shadow server compares every request: the toolkit's default sample rate is 1.
PATH_ENV: dict[str, dict[str, str]] = {
    "legacy": {
        "FLASK_CQRS_DEFAULT_READ_STAGE": "legacy",
        "FLASK_CQRS_DEFAULT_WRITE_STAGE": "legacy",
    },
    # The shop before the migration, on a database without change capture: no write guard
    # either (with no capture it would warn on every legacy write, at a cost the shop
    # never paid).
    "plain": {
        "FLASK_CQRS_DEFAULT_READ_STAGE": "legacy",
        "FLASK_CQRS_DEFAULT_WRITE_STAGE": "legacy",
        "FLASK_CQRS_WRITE_GUARD": "off",
    },
    # The legacy path on the migrated database with the refresh deferred: the write pays
    # the capture triggers alone (what any writer the app does not run pays: a cron job,
    # another service, psql), the keys are left pending.
    "capture": {
        "FLASK_CQRS_DEFAULT_READ_STAGE": "legacy",
        "FLASK_CQRS_DEFAULT_WRITE_STAGE": "legacy",
        "FLASK_CQRS_REFRESH_IN_WRITES": "false",
    },
    "new": {
        "FLASK_CQRS_DEFAULT_READ_STAGE": "complete",
        "FLASK_CQRS_DEFAULT_WRITE_STAGE": "command",
    },
    # Commands apply no hand-written projection: every read model is kept by
    # refresh-by-key (the toolkit's CQRS_INLINE_PROJECTIONS setting).
    "refresh": {
        "FLASK_CQRS_DEFAULT_READ_STAGE": "complete",
        "FLASK_CQRS_DEFAULT_WRITE_STAGE": "command",
        "FLASK_CQRS_INLINE_PROJECTIONS": "false",
    },
    "shadow": {
        "FLASK_CQRS_DEFAULT_READ_STAGE": "shadow",
        "FLASK_CQRS_DEFAULT_WRITE_STAGE": "legacy",
    },
}
#: The shop with its wrapped endpoints' legacy views put back (overhead:legacy-stage).
UNWRAPPED_APP = "bench.unwrapped_app:create_app()"


class ServerFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class Server:
    label: str  # "legacy", "new", "plain", ...: unique per backend
    port: int
    log_path: Path

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def shop_server(
    label: str,
    database_url: str,
    env_path: str,
    log_dir: Path,
    app: str = SHOP_APP,
    *,
    workers: int = 1,
) -> Iterator[Server]:
    """Run ``app`` (the shop's factory) under gunicorn (``workers`` sync workers) until the
    block ends."""
    port = _free_port()
    log_path = log_dir / f"server-{label}.log"
    env = {
        **os.environ,
        **PATH_ENV[env_path],
        "DATABASE_URL": database_url,
        "PYTHONUNBUFFERED": "1",
    }
    command = [
        sys.executable, "-m", "gunicorn",
        "--workers", str(workers),
        "--worker-class", "sync",
        "--bind", f"127.0.0.1:{port}",
        # Legacy requests on a big shop take a while; never let gunicorn kill one mid-sample.
        "--timeout", "300",
        "--log-level", "warning",
        # The bench's own entry modules import from the repository, wherever we run from.
        "--chdir", str(REPO_ROOT),
        app,
    ]  # fmt: skip
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = Server(label, port, log_path)
    try:
        _wait_until_up(server, process)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_up(server: Server, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerFailed(
                f"the {server.label} server exited ({process.returncode}) while starting:\n"
                f"{server.log_tail()}"
            )
        try:
            if get(server.port, "/healthz").status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise ServerFailed(f"the {server.label} server did not answer /healthz in time")
