"""What the clients saw, counted from many threads at once."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

from .http import NO_ANSWER, Reply

#: Examples of unexpected answers kept per tally: enough to diagnose, not to flood.
MAX_EXAMPLES = 5


def status_key(status: int) -> str:
    return "no answer" if status == NO_ANSWER else str(status)


@dataclass
class Tally:
    """Per-status counts, latencies and a few examples of 5xx answers, thread-safe."""

    statuses: Counter[str] = field(default_factory=Counter)
    served_by: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, what: str, reply: Reply) -> None:
        with self._lock:
            self.statuses[status_key(reply.status)] += 1
            if reply.served_by:
                self.served_by[reply.served_by] += 1
            self.latencies_ms.append(reply.ms)
            if reply.status >= 500 and len(self.examples) < MAX_EXAMPLES:
                self.examples.append(f"{what} -> {reply.status} {reply.body[:200]!r}")

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status.startswith("5"))

    def count(self, *statuses: int) -> int:
        return sum(self.statuses[status_key(s)] for s in statuses)

    @property
    def max_ms(self) -> float:
        return max(self.latencies_ms, default=0.0)

    def merge(self, other: Tally) -> None:
        with self._lock:
            self.statuses.update(other.statuses)
            self.served_by.update(other.served_by)
            self.latencies_ms.extend(other.latencies_ms)
            room = MAX_EXAMPLES - len(self.examples)
            self.examples.extend(other.examples[: max(room, 0)])
