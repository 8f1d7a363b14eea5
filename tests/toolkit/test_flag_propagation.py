"""A flag change reaches every process: real processes, one database.

Two set-ups: separate Python processes polling the flag, and gunicorn --preload with two
workers forked from a master that had already loaded the flags (the workers must not keep
the master's snapshot).

Nothing here is timed. How soon a process re-reads the flags (the refresh interval, by
default half a second) is checked with a controlled clock in test_flags.py; here every
process must see every change, in order, never go back to an older one once it has
served a newer one, and pick the same subjects for a percentage.
"""

from __future__ import annotations

import itertools
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

from cqrs_layer.ops.context import Toolkit
from cqrs_layer.rollout.stages import in_rollout

from .flag_probe import PROBED, SUBJECTS
from .helpers import change

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
#: How long to wait for a process to start or to report: a bound on waiting, not a promise.
WAIT_SECONDS = 30.0

#: (order sent, order received, answer): the order of the probe's requests and answers.
Probe = tuple[int, int, dict[str, Any]]


def commit(toolkit: Toolkit, stage: str, percent: float | None = None) -> None:
    """Change the probed flag (forced: propagation is tested, not the gate)."""
    assert change(toolkit, PROBED, stage, percent=percent, reason="propagation", force=True).changed


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

    def next_change(self) -> dict[str, Any]:
        try:
            return self.lines.get(timeout=WAIT_SECONDS)
        except queue.Empty:
            raise AssertionError(f"watcher {self.process.pid} reported nothing") from None

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def watchers(toolkit: Toolkit, database_url: str) -> Iterator[list[Watcher]]:
    started = [Watcher(database_url) for _ in range(3)]
    try:
        yield started
    finally:
        for watcher in started:
            watcher.stop()


def test_separate_processes_see_each_change_in_order(
    toolkit: Toolkit, watchers: list[Watcher]
) -> None:
    """Was: also timed (each change seen within a second of its commit)."""
    for watcher in watchers:
        assert watcher.next_change()["stage"] == "legacy"
    served_at: dict[float | None, list[str]] = {}
    for stage, percent in (("shadow", None), ("live", 30), ("live", 60), ("legacy", None)):
        commit(toolkit, stage, percent)
        for watcher in watchers:
            seen = watcher.next_change()  # the very next flag it saw is this one
            assert (seen["stage"], seen["percent"]) == (stage, percent or 100.0)
            if stage == "live":
                # Sticky: every process serves exactly the subjects the hash picks.
                assert seen["served"] == served_at.setdefault(percent, seen["served"])
    assert served_at[30] == [s for s in SUBJECTS if in_rollout(PROBED, s, 30)]
    assert 15 < len(served_at[30]) < len(served_at[60]) < 85
    assert set(served_at[30]) < set(served_at[60])  # raising the percentage only adds
    for watcher in watchers:
        assert watcher.lines.empty()  # nothing in between, nothing after


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def gunicorn(toolkit: Toolkit, database_url: str) -> Iterator[tuple[int, Callable[..., Any]]]:
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
        give_up = time.monotonic() + WAIT_SECONDS
        while True:
            try:
                get()
                break
            except OSError:
                assert master.poll() is None, "gunicorn exited"
                assert time.monotonic() < give_up, "gunicorn did not start"
                time.sleep(0.1)
        yield master.pid, get
    finally:
        master.terminate()
        master.wait(timeout=20)


def poll_workers(get: Callable[..., Any], until: Callable[[list[Probe]], bool]) -> list[Probe]:
    """Probe from 4 threads at once (so both workers are kept busy) until ``until``.

    Each probe records when it was sent and answered as positions in one sequence, so
    "answered before that one was sent" can be told without reading a clock."""
    answers: list[Probe] = []
    lock = threading.Lock()
    sequence = itertools.count()
    done = threading.Event()
    give_up = time.monotonic() + WAIT_SECONDS

    def probe_loop() -> None:
        while not done.is_set() and time.monotonic() < give_up:
            with lock:
                sent = next(sequence)
            answer = get(hold=0.01)
            with lock:
                answers.append((sent, next(sequence), answer))
                if until(answers):
                    done.set()

    with ThreadPoolExecutor(4) as pool:
        for future in [pool.submit(probe_loop) for _ in range(4)]:
            future.result()
    assert done.is_set(), f"condition not reached; answers: {answers[-10:]}"
    return answers


def workers_seeing(stage: str, answers: list[Probe]) -> set[int]:
    return {answer["pid"] for _, _, answer in answers if answer["stage"] == stage}


def seen_by_all(stage: str, workers: set[int]) -> Callable[[list[Probe]], bool]:
    return lambda answers: workers_seeing(stage, answers) >= workers


def never_back(stage: str, answers: list[Probe]) -> list[Probe]:
    """Answers of an older stage from a worker that had already answered ``stage``
    before the request was sent: a worker that went back."""
    first_new: dict[int, int] = {}
    for _, received, answer in sorted(answers, key=lambda probe: probe[1]):
        if answer["stage"] == stage:
            first_new.setdefault(answer["pid"], received)
    return [
        (sent, received, answer)
        for sent, received, answer in answers
        if answer["stage"] != stage
        and answer["pid"] in first_new
        and sent > first_new[answer["pid"]]
    ]


def test_gunicorn_workers_forked_after_start_up_see_each_change(
    toolkit: Toolkit, gunicorn: tuple[int, Callable[..., Any]]
) -> None:
    """Was: also timed (each worker within a second of the commit, and no stale answer
    to a request sent a second after it)."""
    master_pid, get = gunicorn
    before = poll_workers(get, lambda answers: len(workers_seeing("legacy", answers)) == 2)
    workers = workers_seeing("legacy", before)
    assert master_pid not in workers

    for stage in ("shadow", "legacy", "shadow"):
        commit(toolkit, stage)
        answers = poll_workers(get, seen_by_all(stage, workers))
        assert never_back(stage, answers) == []
        assert {a["pid"] for _, _, a in answers} == workers  # no worker was replaced

    # Sticky across workers: each subject gets the same answer from whichever serves it.
    commit(toolkit, "live", 30)
    poll_workers(get, seen_by_all("live", workers))
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
