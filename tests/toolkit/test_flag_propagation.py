"""A flag change reaches every process within a second: real processes, one database.

Two set-ups: separate Python processes polling the flag (measures each one's delay from
the commit precisely), and gunicorn --preload with two workers forked from a master that
had already loaded the flags (the workers must not keep the master's snapshot).
"""

from __future__ import annotations

import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from cqrs_layer.flags import FlagStore
from cqrs_layer.rollout import in_rollout

from .flag_probe import PROBED, SUBJECTS

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 1.0  # the promise: live everywhere within a second of the commit
START_TIMEOUT = 30.0


@pytest.fixture
def store(toy_app: Flask) -> FlagStore:
    flag_store: FlagStore = toy_app.extensions["cqrs"].flags
    return flag_store


def commit(store: FlagStore, stage: str, percent: float | None = None) -> float:
    """Change the probed flag; the time returned is taken BEFORE the change commits, so
    measured delays can only be overestimated."""
    started = time.time()
    store.set_stage(PROBED, stage, percent=percent, actor="test", reason="propagation", force=True)
    return started


class Watcher:
    """A ``python -m tests.toolkit.flag_probe`` process and the JSON lines it prints."""

    def __init__(self, database_url: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.toolkit.flag_probe", database_url],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(json.loads(line))

    def next_change(self, timeout: float) -> dict[str, Any]:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"watcher {self.process.pid} reported nothing") from None

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def watchers(toy_app: Flask, database_url: str) -> Iterator[list[Watcher]]:
    started = [Watcher(database_url) for _ in range(3)]
    try:
        yield started
    finally:
        for watcher in started:
            watcher.stop()


def test_separate_processes_see_each_change_within_a_second(
    store: FlagStore, watchers: list[Watcher]
) -> None:
    for watcher in watchers:
        assert watcher.next_change(START_TIMEOUT)["stage"] == "legacy"
    delays: list[float] = []
    served_at: dict[float, list[str]] = {}
    for stage, percent in (("shadow", None), ("live", 30), ("live", 60), ("legacy", None)):
        committed = commit(store, stage, percent)
        for watcher in watchers:
            seen = watcher.next_change(DEADLINE + 2)
            assert (seen["stage"], seen["percent"]) == (stage, percent or 100.0)
            delays.append(seen["t"] - committed)
            if stage == "live":
                # Sticky: every process serves exactly the subjects the hash picks.
                assert seen["served"] == served_at.setdefault(percent, seen["served"])
    assert served_at[30] == [s for s in SUBJECTS if in_rollout(PROBED, s, 30)]
    assert 15 < len(served_at[30]) < len(served_at[60]) < 85
    assert set(served_at[30]) < set(served_at[60])  # raising the percentage only adds
    print(f"propagation to 3 processes: max {max(delays) * 1000:.0f} ms of {len(delays)}")
    assert max(delays) < DEADLINE, delays


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def gunicorn(toy_app: Flask, database_url: str) -> Iterator[tuple[int, Callable[..., Any]]]:
    port = free_port()
    master = subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn", "--preload", "--workers", "2",
            "--bind", f"127.0.0.1:{port}", "--timeout", "60", "--log-level", "warning",
            "tests.toolkit.flag_probe:gunicorn_app()",
        ],
        cwd=ROOT,
        env={**os.environ, "FLAG_PROBE_DATABASE_URL": database_url},
    )  # fmt: skip
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no proxies

    def get(subject: str = "anyone", hold: float = 0.0) -> dict[str, Any]:
        url = f"http://127.0.0.1:{port}/_probe/flag/{PROBED}?hold={hold}"
        headers = {"X-CQRS-Subject": subject}
        with opener.open(urllib.request.Request(url, headers=headers), timeout=10) as response:
            answer: dict[str, Any] = json.loads(response.read())
        return answer

    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                get()
                break
            except OSError:
                assert master.poll() is None, "gunicorn exited"
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.1)
        yield master.pid, get
    finally:
        master.terminate()
        master.wait(timeout=20)


def poll_workers(
    get: Callable[..., Any], until: Callable[[list[tuple[float, float, dict[str, Any]]]], bool]
) -> list[tuple[float, float, dict[str, Any]]]:
    """Probe from 4 threads at once (so both workers are kept busy) until ``until``."""
    answers: list[tuple[float, float, dict[str, Any]]] = []
    lock = threading.Lock()
    done = threading.Event()
    give_up = time.monotonic() + 10

    def probe_loop() -> None:
        while not done.is_set() and time.monotonic() < give_up:
            sent = time.time()
            answer = get(hold=0.01)
            with lock:
                answers.append((sent, time.time(), answer))
                if until(answers):
                    done.set()

    with ThreadPoolExecutor(4) as pool:
        for future in [pool.submit(probe_loop) for _ in range(4)]:
            future.result()
    assert done.is_set(), f"condition not reached; answers: {answers[-10:]}"
    return answers


def workers_seeing(stage: str, answers: list[tuple[float, float, dict[str, Any]]]) -> set[int]:
    return {answer["pid"] for _, _, answer in answers if answer["stage"] == stage}


def test_gunicorn_workers_forked_after_start_up_see_each_change_within_a_second(
    store: FlagStore, gunicorn: tuple[int, Callable[..., Any]]
) -> None:
    master_pid, get = gunicorn
    before = poll_workers(get, lambda answers: len(workers_seeing("legacy", answers)) == 2)
    workers = workers_seeing("legacy", before)
    assert master_pid not in workers

    delays: list[float] = []
    for stage in ("shadow", "legacy", "shadow"):
        committed = commit(store, stage)
        answers = poll_workers(get, lambda got, s=stage: workers_seeing(s, got) >= workers)
        for pid in workers:
            first = min(
                received for _, received, a in answers if (a["pid"], a["stage"]) == (pid, stage)
            )
            delays.append(first - committed)
            assert first - committed < DEADLINE, f"worker {pid} took {first - committed:.2f}s"
        stale = [a for sent, _, a in answers if sent > committed + DEADLINE and a["stage"] != stage]
        assert stale == []
        assert {a["pid"] for _, _, a in answers} == workers  # no worker was replaced

    print(f"propagation to 2 gunicorn workers: max {max(delays) * 1000:.0f} ms of {len(delays)}")

    # Sticky across workers: each subject gets the same answer from whichever serves it.
    commit(store, "live", 30)
    time.sleep(DEADLINE)
    served_by_worker: dict[int, dict[str, bool]] = {}
    with ThreadPoolExecutor(4) as pool:
        answers_by_subject = list(
            pool.map(lambda s: (s, get(s, hold=0.01)), [s for s in SUBJECTS[:40] for _ in "ab"])
        )
    for subject, answer in answers_by_subject:
        assert answer["stage"] == "live"
        assert answer["serve_new"] == in_rollout(PROBED, subject, 30), subject
        served_by_worker.setdefault(answer["pid"], {})[subject] = answer["serve_new"]
    assert set(served_by_worker) == workers
