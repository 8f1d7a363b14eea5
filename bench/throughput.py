"""Orders per second under concurrency: ``write-throughput:orders.place_order`` (issue 9).

Latency pairs show what one order costs; this shows what a server keeps up with when
orders compete for the same rows. ``CLIENTS`` client threads post orders back to back
(a new connection each, like every other request of the bench) against a server of
``WORKERS`` gunicorn sync workers, first on one path, then the other, in rounds that
alternate which path goes first (AB, BA, ...) so a burst of background load falls on
both. In each round the clients run ``warmup`` seconds, and until ``WARM_REPLIES``
replies came in, before counting (a worker's first requests compile statements and
read-model lineage: not what a running server pays), then count the orders answered 201
within ``seconds``. The legacy path is the shop before the migration
(the ``plain`` server, a database copy without change capture), the candidate the
command path with the shop's projections: the record's value is candidate orders/s over
legacy orders/s (higher is better). Every reply must come from the path its server
serves, as in :mod:`bench.measure`; any other status is counted as an error.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .client import post
from .database import DataFacts
from .measure import Side, WrongPath, percentile
from .writes import order_body

CLIENTS = 8
WORKERS = 4
BODIES = 5_000  # distinct bodies, reused in turn
#: Replies per round before counting starts, whatever the warm-up time: every worker has
#: served a few orders by then.
WARM_REPLIES = 8 * WORKERS
#: ... unless the server cannot give that many in this time (then counting starts anyway).
WARM_LIMIT = 60.0
JOIN_TIMEOUT = 330.0  # longer than the client's request timeout


@dataclass(frozen=True)
class Schedule:
    rounds: int
    warmup: float  # seconds per round before counting
    seconds: float  # seconds counted per round


@dataclass
class Tally:
    ok: int = 0
    errors: int = 0
    first_error: str | None = None
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        return self.ok / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Throughput:
    baseline: Tally
    candidate: Tally


def measure_throughput(
    facts: DataFacts, legacy: Side, command: Side, schedule: Schedule, rng: random.Random
) -> Throughput:
    bodies = [order_body(rng, facts) for _ in range(BODIES)]
    tallies = {legacy.label: Tally(), command.label: Tally()}
    for number in range(schedule.rounds):
        order = (legacy, command) if number % 2 == 0 else (command, legacy)
        for side in order:
            _round(side, bodies, schedule, tallies[side.label])
    return Throughput(tallies[legacy.label], tallies[command.label])


def _round(side: Side, bodies: list[dict[str, Any]], schedule: Schedule, tally: Tally) -> None:
    name = "write-throughput:orders.place_order"
    counter = itertools.count()  # next() on it is atomic under the GIL
    lock = threading.Lock()
    replies = 0
    warm = threading.Event()
    counting = threading.Event()
    stop = threading.Event()
    wrong: list[WrongPath] = []

    def client() -> None:
        nonlocal replies
        while not stop.is_set():
            body = bodies[next(counter) % len(bodies)]
            reply = post(side.server.port, "/api/orders", body)
            try:
                side.check(name, reply)
            except WrongPath as error:
                wrong.append(error)
                stop.set()
                warm.set()
                return
            with lock:
                replies += 1
                if replies >= WARM_REPLIES:
                    warm.set()
                if not counting.is_set() or stop.is_set():
                    continue  # warming up, or answered after the count closed
                if reply.status == 201:
                    tally.ok += 1
                    tally.latencies_ms.append(reply.ms)
                else:
                    tally.errors += 1
                    if tally.first_error is None:
                        tally.first_error = (
                            f"{side.label}: HTTP {reply.status} {reply.body[:300]!r}"
                        )

    threads = [threading.Thread(target=client, daemon=True) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    try:
        stop.wait(schedule.warmup)
        warm.wait(WARM_LIMIT)
        with lock:
            counting.set()
            started = time.perf_counter()
        stop.wait(schedule.seconds)
        with lock:
            stop.set()
            tally.seconds += time.perf_counter() - started
    finally:
        stop.set()
        for thread in threads:
            thread.join(JOIN_TIMEOUT)
    if wrong:
        raise wrong[0]


def p50(tally: Tally) -> float:
    return percentile(tally.latencies_ms, 0.5)
