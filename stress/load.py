"""Client threads: many at once until a deadline, or once each released together."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: A client joins this long after its deadline at most (its last request may be slow).
JOIN_GRACE = 90.0


@contextmanager
def clients(
    count: int, loop: Callable[[int, threading.Event], None], name: str = "client"
) -> Iterator[threading.Event]:
    """Run ``loop(index, stop)`` in ``count`` threads for the block; set ``stop`` and join
    them when it ends (however it ends), so no client outlives its scenario."""
    stop = threading.Event()
    threads = [
        threading.Thread(target=loop, args=(index, stop), name=f"{name}-{index}", daemon=True)
        for index in range(count)
    ]
    for thread in threads:
        thread.start()
    try:
        yield stop
    finally:
        stop.set()
        for thread in threads:
            thread.join(JOIN_GRACE)


def all_at_once(count: int, act: Callable[[int], None]) -> None:
    """Call ``act(index)`` from ``count`` threads released by one barrier: the closest a
    harness gets to ``count`` simultaneous requests."""
    barrier = threading.Barrier(count)

    def run(index: int) -> None:
        barrier.wait()
        act(index)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_GRACE)
