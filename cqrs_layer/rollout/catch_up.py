"""Catching up off the request path: the app applies changes left pending by itself.

A write whose refresh failed or was cut short, or a read that found its read models
behind, asks for their committed changes to be applied; the job runs on the app's
background pool after the response, at most one per read model at a time (a second ask
while one runs or waits adds nothing). ``flask cqrs refresh --follow`` does the same for
writers the app never sees.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from sqlalchemy import Engine

from ..read.refresh import Refresher
from .comparisons import ComparisonPool


class CatchUp:
    def __init__(
        self, refresher: Refresher, engine: Engine, pool: Callable[[], ComparisonPool]
    ) -> None:
        self._refresher = refresher
        self._engine = engine
        self._pool = pool
        self._queued: set[str] = set()
        self._lock = threading.Lock()

    def ask(self, models: Iterable[str]) -> None:
        for model in models:
            with self._lock:
                if model in self._queued:
                    continue
                self._queued.add(model)
            if not self._pool().submit(lambda model=model: self._run(model)):  # type: ignore[misc]
                self._done(model)  # queue full: the next ask tries again

    def _run(self, model: str) -> None:
        try:
            self._refresher.refresh_committed(self._engine, only=[model])
        finally:
            self._done(model)

    def _done(self, model: str) -> None:
        with self._lock:
            self._queued.discard(model)
