"""The shop under gunicorn, as production runs it, in a process group the harness owns.

4 workers, the repository's ``gunicorn.conf.py``, loopback only, a free port. The master
starts a session of its own, so master and workers form one process group: the crash
scenario SIGKILLs the whole group at once, and every exit path of the harness does the same
(``ShopServer.kill``), so no worker outlives a failed scenario. On Linux the master is also
told to die with the harness (``PR_SET_PDEATHSIG``); its workers notice their parent is gone
and exit by themselves.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from .http import get

REPO_ROOT = Path(__file__).resolve().parents[1]
GUNICORN_CONFIG = REPO_ROOT / "gunicorn.conf.py"
SHOP_APP = "legacy_app:create_app()"
WORKERS = 4
#: gthread: this many threads per worker (the oversell scenario runs both worker kinds).
THREADS = 4
STARTUP_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
_PR_SET_PDEATHSIG = 1


class ServerFailed(RuntimeError):
    """The server did not come up (its log tail is in the message)."""


@dataclass(frozen=True)
class ServerSpec:
    """What to run: the worker kind and the settings the workers read from the environment."""

    label: str
    database_url: str
    log_dir: Path
    worker_class: str = "sync"  # or "gthread"
    env: Mapping[str, str] | None = None


class ShopServer:
    """One gunicorn master and its workers; ``start`` again after ``kill`` to restart."""

    def __init__(self, spec: ServerSpec) -> None:
        self.spec = spec
        self.port = _free_port()
        self.log_path = spec.log_dir / f"{spec.label}.log"
        self._process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def master_pid(self) -> int:
        assert self._process is not None, "not started"
        return self._process.pid

    def start(self) -> None:
        """Start (or restart, on the same port) and return once /healthz answers 200."""
        spec = self.spec
        env = {
            **shop_environment(),
            # Every endpoint on its legacy path unless the scenario says otherwise.
            "FLASK_CQRS_DEFAULT_READ_STAGE": "legacy",
            "FLASK_CQRS_DEFAULT_WRITE_STAGE": "legacy",
            **(spec.env or {}),
            "DATABASE_URL": spec.database_url,
            "PYTHONUNBUFFERED": "1",
        }
        command = [
            sys.executable, "-m", "gunicorn",
            "--config", str(GUNICORN_CONFIG),
            "--workers", str(WORKERS),
            "--worker-class", spec.worker_class,
            *(["--threads", str(THREADS)] if spec.worker_class == "gthread" else []),
            "--bind", f"127.0.0.1:{self.port}",
            "--log-level", "warning",
            "--chdir", str(REPO_ROOT),
            SHOP_APP,
        ]  # fmt: skip
        spec.log_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: killpg reaches every worker
                preexec_fn=lambda: die_with_parent(signal.SIGKILL),
            )
        self.starts += 1
        try:
            self._wait_until_healthy()
        except BaseException:
            self.kill()
            raise

    def worker_pids(self) -> list[int]:
        """The master's live children: its workers (read from /proc, Linux)."""
        master = self.master_pid
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue  # exited meanwhile
            # "pid (comm) state ppid ...": comm may hold spaces, so split after its ")".
            fields = stat.rpartition(")")[2].split()
            if len(fields) > 1 and fields[1] == str(master) and fields[0] != "Z":
                pids.append(int(entry.name))
        return pids

    def kill(self) -> None:
        """SIGKILL master and workers at once; reap the master."""
        process = self._process
        if process is None:
            return
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=STOP_TIMEOUT)

    def stop(self) -> None:
        """Quick shutdown (SIGQUIT: workers exit at once, nothing here needs them to finish
        their requests), then SIGKILL whatever is left of the group."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            with suppress(ProcessLookupError):
                process.send_signal(signal.SIGQUIT)
            with suppress(subprocess.TimeoutExpired):
                process.wait(timeout=STOP_TIMEOUT)
        self.kill()  # the group: a worker that outlived its master is not left behind

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def _wait_until_healthy(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise ServerFailed(
                    f"{self.spec.label}: gunicorn exited ({self._process.returncode}) while "
                    f"starting:\n{self.log_tail()}"
                )
            if get(self.base_url, "/healthz", timeout=2.0).status == 200:
                return
            time.sleep(0.1)
        raise ServerFailed(f"{self.spec.label}: /healthz did not answer in {STARTUP_TIMEOUT} s")


@contextmanager
def running(spec: ServerSpec) -> Iterator[ShopServer]:
    """A started server, stopped (and its process group killed) however the block ends."""
    server = ShopServer(spec)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def shop_environment() -> dict[str, str]:
    """The harness's environment without toolkit settings: each scenario states its own,
    so an FLASK_CQRS_* exported in the caller's shell cannot change what is tested."""
    return {k: v for k, v in os.environ.items() if not k.startswith("FLASK_CQRS_")}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def die_with_parent(signum: int) -> None:
    """In the child before exec: send me ``signum`` when the thread that started me exits.

    The signal follows the *thread* that forked, so servers are started from the main
    thread only. Best effort: elsewhere than Linux this does nothing.
    """
    if sys.platform != "linux":
        return
    with suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signum)
