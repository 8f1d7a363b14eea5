"""Requests with their start and end times, so each can be judged by what was in effect
while it ran (a table renamed away, a lock held)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from .http import Reply
from .locks import Window
from .tally import Tally, status_key


@dataclass(frozen=True)
class Timed:
    kind: str  # what the client did: "write", "catalog read", "unrelated read"
    started: float  # time.monotonic()
    finished: float
    reply: Reply


@dataclass
class Timeline:
    tally: Tally = field(default_factory=Tally)
    entries: list[Timed] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def timed(self, kind: str, send: Callable[[], Reply]) -> Reply:
        started = time.monotonic()
        reply = send()
        entry = Timed(kind, started, time.monotonic(), reply)
        self.tally.add(kind, reply)
        with self._lock:
            self.entries.append(entry)
        return reply

    def during(self, kind: str, window: Window) -> list[Timed]:
        """Requests of ``kind`` that ran while ``window`` was in effect (at least partly)."""
        return [
            e for e in self.entries if e.kind == kind and window.overlaps(e.started, e.finished)
        ]

    def created_ids(self, kind: str = "write") -> list[int]:
        """The ids of what the ``kind`` requests created (their 201 answers)."""
        ids = []
        for entry in self.entries:
            body = entry.reply.json()
            if entry.kind == kind and entry.reply.status == 201 and isinstance(body, dict):
                ids.append(int(body["id"]))
        return ids


def statuses(entries: list[Timed]) -> dict[str, int]:
    return dict(Counter(status_key(e.reply.status) for e in entries))


def served_by(entries: list[Timed]) -> dict[str, int]:
    return dict(Counter(e.reply.served_by or "-" for e in entries))


def max_ms(entries: list[Timed]) -> float:
    return round(max((e.reply.ms for e in entries), default=0.0), 1)
