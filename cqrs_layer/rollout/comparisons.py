"""Comparisons off the request path: a bounded worker pool that runs the *other* read path.

After a sampled request has its response, the path that did not serve it (the read model in
``shadow``, legacy in ``live``) is run on a worker thread, in its own request context built
from a copy of the request (method, path, query string, headers, body) and so with its own
app context and database session. Its answer is diffed with the served one
(:mod:`cqrs_layer.rollout.diff`), the result recorded (:mod:`cqrs_layer.rollout.history`)
and the endpoint checked for automatic demotion.

The user never waits for any of it: the pool has a bounded queue, and a comparison that
does not fit is dropped and counted, never queued behind the request. Each run has a time
budget (``CQRS_COMPARISON_TIMEOUT_MS``) enforced by the database
(:mod:`cqrs_layer.rollout.deadline`). Tests, and a graceful shutdown, wait for the queue
with :meth:`Comparisons.drain`.
"""

from __future__ import annotations

import io
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from flask import Flask, Request, request
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, scoped_session
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from ..core import logs, metrics
from ..core.settings import Settings
from ..core.sql import refused_as_read_only
from ..read.refresh import pending_models
from .deadline import Deadline, DeadlineExceeded, enforced
from .diff import Answer, ComparisonOptions, Diff, diff_answers
from .history import (
    CHANGED,
    ERROR,
    FALLBACK,
    MATCH,
    MISMATCH,
    STALE,
    TIMEOUT,
    ComparisonHistory,
    ComparisonResult,
)

LEGACY = "legacy"
READ_MODEL = "read-model"

#: Called with an endpoint's name after each of its comparisons is recorded.
AfterRecord = Callable[[str], object]


# ---------------------------------------------------------------- the bounded pool


class ComparisonPool:
    """A thread pool whose queue is bounded: :meth:`submit` never blocks; it refuses."""

    def __init__(self, workers: int, queue_size: int) -> None:
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cqrs-compare")
        # Running + waiting jobs; the executor's own queue is unbounded, this bounds it.
        self._slots = threading.BoundedSemaphore(workers + queue_size)
        self._idle = threading.Condition()
        self._pending = 0
        self.dropped = 0

    @property
    def pending(self) -> int:
        return self._pending

    def submit(self, job: Callable[[], None]) -> bool:
        """Queue ``job``; False (and counted as dropped) if the queue is full."""
        if not self._slots.acquire(blocking=False):
            self._count_drop()
            return False
        with self._idle:
            self._pending += 1
        try:
            self._executor.submit(self._run, job)
        except RuntimeError:  # shut down: dropping beats failing the request
            self._finished()
            self._count_drop()
            return False
        return True

    def drain(self, timeout: float) -> bool:
        """Wait until every queued job has finished; False if ``timeout`` ran out first."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def shutdown(self, timeout: float = 10.0) -> bool:
        """Finish queued comparisons (up to ``timeout``), then stop the workers."""
        drained = self.drain(timeout)
        self._executor.shutdown(wait=drained, cancel_futures=True)
        return drained

    def _run(self, job: Callable[[], None]) -> None:
        try:
            job()
        except Exception:
            logs.comparison.exception("comparison job failed")
        finally:
            self._finished()

    def _finished(self) -> None:
        self._slots.release()
        with self._idle:
            self._pending -= 1
            if self._pending == 0:
                self._idle.notify_all()

    def _count_drop(self) -> None:
        with self._idle:
            self.dropped += 1
        metrics.comparisons_dropped_total.inc()


# ---------------------------------------------------------------- answers and observations


@dataclass(frozen=True, slots=True)
class Observation:
    """How one path did: its answer, or its error, and how long it took."""

    answer: Answer | None
    error: str | None
    ms: float
    timed_out: bool = False


def answer_of(response: BaseResponse) -> Answer | None:
    """The comparable part of a response; None when the body cannot be read safely."""
    if response.is_streamed:
        return None  # reading it would consume what the client is about to receive
    if response.is_json:
        body = response.get_json(silent=True)
        if body is not None or not response.get_data():
            return Answer(response.status_code, body)
    return Answer(response.status_code, response.get_data(as_text=True))


def display_path(environ: dict[str, Any]) -> str:
    """The request's path and query string, as recorded in the history."""
    query = environ.get("QUERY_STRING")
    path = str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO", ""))
    return f"{path}?{query}" if query else path


def describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def handled_response(app: Flask, error: Exception) -> BaseResponse:
    """What the app's error handlers make of ``error``; re-raises if none handles it."""
    rv = app.handle_user_exception(error)
    if isinstance(rv, HTTPException):  # as Flask itself renders an unhandled abort()
        return rv.get_response()
    return app.make_response(rv)


# ---------------------------------------------------------------- the copied request


@dataclass(frozen=True, slots=True)
class RequestCopy:
    """What a request is made of, detached from the live request (which will be gone)."""

    environ: dict[str, Any]
    body: bytes

    @classmethod
    def of(cls, live: Request, max_body: int) -> RequestCopy | None:
        length = live.content_length or 0
        if length > max_body:
            return None
        environ = {
            key: value
            for key, value in live.environ.items()
            if isinstance(value, str) and (key.isupper() or key == "wsgi.url_scheme")
        }
        return cls(environ, live.get_data(cache=True) if length else b"")

    @property
    def method(self) -> str:
        return str(self.environ.get("REQUEST_METHOD", "GET"))

    @property
    def path(self) -> str:
        return display_path(self.environ)

    def fresh_environ(self) -> dict[str, Any]:
        environ: dict[str, Any] = dict(self.environ)
        environ.update(
            {
                "wsgi.version": (1, 0),
                "wsgi.input": io.BytesIO(self.body),
                "wsgi.errors": sys.stderr,
                "wsgi.multithread": True,
                "wsgi.multiprocess": False,
                "wsgi.run_once": False,
                "CONTENT_LENGTH": str(len(self.body)),
                "cqrs.comparison": True,
            }
        )
        return environ


# ---------------------------------------------------------------- one comparison


@dataclass(frozen=True, slots=True)
class Comparison:
    """A served request waiting to be compared with the path that did not serve it."""

    endpoint: str
    stage: str
    served_by: str  # LEGACY or READ_MODEL
    request: RequestCopy
    served: Observation
    #: The views of the path that served and of the other one, and how answers are diffed.
    served_view: Callable[..., Any]
    other_view: Callable[..., Any]
    options: ComparisonOptions
    #: The read models the new path reads: a comparison while they have changes pending
    #: would judge a read model that is correctly known to be behind.
    read_models: tuple[str, ...] = ()


class Comparisons:
    """One app's comparisons: queue them, run them, record them."""

    def __init__(
        self,
        app: Flask,
        session: scoped_session[Any],
        engine: Engine,
        history: ComparisonHistory,
        settings: Settings,
        after_record: AfterRecord,
    ) -> None:
        self._app = app
        self._session = session
        self._engine = engine
        self._history = history
        self._settings = settings
        self._after_record = after_record
        self._pool: tuple[int, ComparisonPool] | None = None
        self._pool_lock = threading.Lock()

    def pool(self) -> ComparisonPool:
        """The pool of this process (a forked worker gets its own: threads do not survive
        a fork)."""
        owned = self._pool
        if owned is not None and owned[0] == os.getpid():
            return owned[1]
        with self._pool_lock:
            owned = self._pool
            if owned is None or owned[0] != os.getpid():
                pool = ComparisonPool(
                    self._settings.comparison_workers, self._settings.comparison_queue
                )
                owned = (os.getpid(), pool)
                self._pool = owned
            return owned[1]

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait for the queued comparisons (tests; graceful shutdown)."""
        return self.pool().drain(timeout)

    def schedule(self, comparison: Comparison) -> bool:
        """Queue ``comparison``; False if it was dropped because the queue is full."""
        return self.pool().submit(lambda: self.run(comparison))

    def schedule_result(self, row: ComparisonResult) -> bool:
        """Queue recording ``row`` (a fallback) off the request path, then a demotion check."""
        return self.pool().submit(lambda: self.save(row))

    def run(self, comparison: Comparison) -> None:
        """Run the other path and judge its answer against the served one.

        Both paths must be judged on the same state: the served answer is from the moment
        it was served, so a write committed since shows up as a difference. So the other
        path runs in one read-only snapshot, and on a difference the served path runs
        again in that same snapshot: if the two then agree, the data changed in between
        (``changed``, not the read model's fault); if they still differ, it is a mismatch,
        with their difference. A read model with changes pending is not judged (``stale``).
        """
        app = self._app
        budget = self._settings.comparison_timeout_ms
        with app.app_context(), app.request_context(comparison.request.fresh_environ()):
            rule = request.url_rule
            if rule is None or rule.endpoint != comparison.endpoint:
                logs.comparison.warning(
                    "comparison for %s: the copied request no longer routes there; skipped",
                    comparison.endpoint,
                )
                return
            # Judged inside the snapshot, recorded after it: a write while it is held
            # would wait for it (SQLite without WAL).
            with snapshot_for(self._engine, self._session) as connection:
                result = self._judged(comparison, connection, budget)
        self.save(result)

    def _judged(
        self, comparison: Comparison, connection: Connection, budget: float
    ) -> ComparisonResult:
        if pending_models(connection, comparison.read_models):
            return _unjudged(comparison, STALE)
        serving_new = comparison.served_by == READ_MODEL
        other = self.observe(comparison.other_view, budget)
        served = comparison.served
        legacy, new = (other, served) if serving_new else (served, other)
        outcome, diff = judge(legacy, new, comparison.options)
        if outcome == MISMATCH:
            again = self.observe(comparison.served_view, budget)
            legacy, new = (other, again) if serving_new else (again, other)
            outcome, diff = judge(legacy, new, comparison.options)
            if outcome == MATCH:
                return _unjudged(comparison, CHANGED)
        return ComparisonResult(
            endpoint=comparison.endpoint,
            stage=comparison.stage,
            served_by=comparison.served_by,
            outcome=outcome,
            method=comparison.request.method,
            path=comparison.request.path,
            legacy_status=legacy.answer.status if legacy.answer else None,
            new_status=new.answer.status if new.answer else None,
            legacy_ms=legacy.ms,
            new_ms=new.ms,
            legacy_error=legacy.error,
            new_error=new.error,
            diff=diff.to_json() if diff is not None and not diff.matched else None,
        )

    def observe(self, view: Callable[..., Any], budget_ms: float) -> Observation:
        """Run ``view`` for the current (copied) request, within ``budget_ms``."""
        app = self._app
        session = self._session
        deadline = Deadline(budget_ms)
        try:
            try:
                with enforced(session.connection(), deadline):
                    rv = preprocess_without_writes(app, session)
                    if rv is None:
                        rv = view(**(request.view_args or {}))
                    response: BaseResponse = app.make_response(rv)
            except DeadlineExceeded:
                raise
            except Exception as error:
                response = handled_response(app, error)
        except DeadlineExceeded as exceeded:
            session.rollback()
            return Observation(None, describe(exceeded), deadline.elapsed_ms(), timed_out=True)
        except Exception as error:
            session.rollback()
            return Observation(None, describe(error), deadline.elapsed_ms())
        elapsed = deadline.elapsed_ms()
        if deadline.expired():  # late in Python code the database could not interrupt
            return Observation(None, describe(deadline.exceeded()), elapsed, timed_out=True)
        answer = answer_of(response)
        if answer is None:
            return Observation(None, "streamed response: body not compared", elapsed)
        if answer.status >= 500:
            return Observation(answer, f"HTTP {answer.status}", elapsed)
        return Observation(answer, None, elapsed)

    def save(self, row: ComparisonResult) -> None:
        """Record ``row`` (in its own transaction), count it, and check for demotion."""
        with self._app.app_context():
            self._history.record(row)
            if row.outcome != FALLBACK:  # counted by fallbacks_total already
                metrics.comparisons_total.labels(endpoint=row.endpoint, outcome=row.outcome).inc()
            self._after_record(row.endpoint)


def _unjudged(comparison: Comparison, outcome: str) -> ComparisonResult:
    return ComparisonResult(
        endpoint=comparison.endpoint,
        stage=comparison.stage,
        served_by=comparison.served_by,
        outcome=outcome,
        method=comparison.request.method,
        path=comparison.request.path,
    )


def preprocess_without_writes(app: Flask, session: scoped_session[Any]) -> Any:
    """Flask's ``preprocess_request`` for a path run in a read-only snapshot.

    The request already ran its ``before_request`` hooks when it was served. A hook that
    writes (``current_user.last_seen = now; commit()``) is refused by the snapshot: its
    write is dropped (the session's savepoint rolled back) and the request goes on, as it
    did when served. Any other error, and any answer a hook returns (a redirect to the
    login page, an ``abort``), counts as usual.
    """
    names = (None, *reversed(request.blueprints))
    for name in names:
        for url_func in app.url_value_preprocessors.get(name, ()):
            url_func(request.endpoint, request.view_args)
    for name in names:
        for before_func in app.before_request_funcs.get(name, ()):
            try:
                rv = app.ensure_sync(before_func)()
            except SQLAlchemyError as error:
                if not refused_as_read_only(error):
                    raise
                session.rollback()
                logs.comparison.debug(
                    "%s writes; its write is dropped in the comparison", before_func
                )
                continue
            if rv is not None:
                return rv
    return None


@contextmanager
def snapshot_for(engine: Engine, scoped: scoped_session[Any]) -> Iterator[Connection]:
    """Run the block in one read-only snapshot that the app's session (its views and
    query handlers) shares, on a connection of its own.

    PostgreSQL: REPEATABLE READ, read only. SQLite: a BEGIN whose first read fixes the
    snapshot, and ``query_only`` so a write fails instead of changing data. The app's
    scoped session is, for this context, a session joined to that transaction through a
    savepoint: a view's (or an error handler's) ``rollback()`` or ``commit()`` ends the
    savepoint, never the snapshot. The session it replaces (a request's own) comes back
    afterwards.
    """
    previous = scoped.registry() if scoped.registry.has() else None
    with engine.connect() as raw:
        sqlite = engine.dialect.name == "sqlite"
        connection = (
            raw
            if sqlite
            else raw.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        )
        transaction = connection.begin()
        if sqlite:
            connection.exec_driver_sql("BEGIN")
            connection.exec_driver_sql("PRAGMA query_only = ON")
        session = Session(bind=connection, join_transaction_mode="create_savepoint")
        scoped.registry.set(session)
        try:
            yield connection
        finally:
            session.close()
            if previous is None:
                scoped.registry.clear()
            else:
                scoped.registry.set(previous)
            if sqlite:
                connection.exec_driver_sql("PRAGMA query_only = OFF")
            transaction.rollback()


def judge(
    legacy: Observation, new: Observation, options: ComparisonOptions
) -> tuple[str, Diff | None]:
    """The outcome of a comparison and, when both paths answered, their diff."""
    if legacy.timed_out or new.timed_out:
        return TIMEOUT, None
    if legacy.answer is None or new.answer is None:
        return ERROR, None
    diff = diff_answers(legacy.answer, new.answer, options)
    if legacy.error is not None or new.error is not None:  # a 5xx: an error, diff kept
        return ERROR, diff
    return (MATCH if diff.matched else MISMATCH), diff


def elapsed_ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000
