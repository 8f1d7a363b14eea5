"""Running an app's existing tests with its endpoints at a chosen stage.

:func:`stage_settings` gives the settings that put every wrapped endpoint at a stage (with
every request compared and time budgets no loaded test machine reaches); pass them to
your app factory. :func:`install` then makes the app fail loudly where the toolkit would
quietly protect users:

- in ``shadow`` and ``live`` (:class:`ComparisonCheck`), every wrapped read waits for its
  comparison before the test gets the response, and the response becomes a 500 naming
  the difference unless exactly one comparison was recorded and it matched;
- in ``live`` and ``complete`` (:func:`refuse_fallbacks`), a read answered by legacy
  because the read model failed becomes a 500 too.

So any answer of the new path that differs from legacy's fails the test that asked.
"""

from __future__ import annotations

import json
import threading
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, make_response, request
from flask.globals import app_ctx
from sqlalchemy import select

from ..core.tables import comparisons
from ..ops.context import toolkit_of
from ..rollout.comparisons import READ_MODEL
from ..rollout.history import MATCH
from ..rollout.routing import SERVED_BY_HEADER
from ..rollout.stages import STAGES
from .client import ClosingClient

#: How long a request waits for its comparison before the check gives up.
DRAIN_SECONDS = 60.0
#: Budgets no loaded test machine reaches: a slow answer must not become a fallback or a
#: timed-out comparison, which the checks would report as failures.
GENEROUS_BUDGETS = {"CQRS_READ_TIMEOUT_MS": 60_000, "CQRS_COMPARISON_TIMEOUT_MS": 60_000}


def stage_settings(read_stage: str = "legacy", write_stage: str = "legacy") -> dict[str, Any]:
    """Settings putting every wrapped endpoint at these stages, every read compared."""
    if read_stage not in STAGES["read"]:
        raise ValueError(f"read stage must be one of {', '.join(STAGES['read'])}")
    if write_stage not in STAGES["write"]:
        raise ValueError(f"write stage must be one of {', '.join(STAGES['write'])}")
    return {
        **GENEROUS_BUDGETS,
        "CQRS_DEFAULT_READ_STAGE": read_stage,
        "CQRS_DEFAULT_WRITE_STAGE": write_stage,
        "CQRS_DEFAULT_SAMPLE_RATE": 1.0,
    }


def install(app: Flask) -> ComparisonCheck | None:
    """The checks for the stages the app's settings give its reads (see the module);
    returns the comparison check when there is one (its ``compared`` counts them)."""
    app.test_client_class = ClosingClient
    stage = toolkit_of(app).settings.default_read_stage
    if stage in ("live", "complete"):
        app.after_request(refuse_fallbacks)
    # Installed last, it wraps the WSGI app outermost and sees the fallback check's verdict.
    return ComparisonCheck(app) if stage in ("shadow", "live") else None


@dataclass(frozen=True)
class CQRSHarness:
    """The stages chosen on the command line (or in the ini file), if any."""

    read_stage: str | None = None
    write_stage: str | None = None

    @property
    def active(self) -> bool:
        return self.read_stage is not None or self.write_stage is not None

    @property
    def settings(self) -> dict[str, Any]:
        """Settings for your app factory: empty unless a stage was chosen."""
        if not self.active:
            return {}
        return stage_settings(self.read_stage or "legacy", self.write_stage or "legacy")

    def install(self, app: Flask) -> None:
        """The checks for the chosen stages; always the client that closes responses."""
        if self.active:
            install(app)
        else:
            app.test_client_class = ClosingClient


def refuse_fallbacks(response: Response) -> Response:
    """after_request: a wrapped read not answered by the read model is a failure.

    The toolkit serves the legacy answer when the read path fails (the user never pays
    for the experiment), which would hide a broken query handler from a test suite."""
    endpoint = toolkit_of().registry.endpoints.get(request.endpoint or "")
    served_by = response.headers.get(SERVED_BY_HEADER)
    if endpoint is None or endpoint.kind != "read" or served_by == READ_MODEL:
        return response
    message = f"{request.endpoint} was served by {served_by!r}, not by the read model"
    return make_response(({"error": {"status": 500, "message": message}}, 500))


class ComparisonCheck:
    """After every wrapped read: wait for its comparison, and answer 500 (naming what went
    wrong) unless exactly one comparison was recorded for it and it matched.

    The toolkit queues a comparison when the server closes the response, so the check
    wraps the WSGI app: it reads and closes the app's response (as a server would), waits
    for the pool, and only then hands the response, or its verdict, to the client.
    Waiting before the client has it keeps the comparison ahead of the test's next write,
    which would otherwise change the data under it.

    When the app context the checked requests ran in (e.g. the test's ``app`` fixture's)
    is popped, :meth:`close` checks once more and shuts the pool down.
    """

    #: Set (in the environ) on the requests whose comparison must be checked.
    CHECK_KEY = "cqrs.testing.comparison_check"

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.toolkit = toolkit_of(app)
        self.pool = self.toolkit.comparisons.pool()
        self.seen_id = 0
        self.compared = 0
        self.closed = False
        self.owner = threading.get_ident()
        #: The app context of the first checked request in the thread that built the app.
        self.outer_context: object | None = None
        app.after_request(self.mark_for_check)
        app.teardown_appcontext(self.teardown)
        self.inner_wsgi = app.wsgi_app
        app.wsgi_app = self.check_wsgi  # type: ignore[method-assign]
        weakref.finalize(app, self.pool.shutdown, 0.0)  # if never torn down

    def mark_for_check(self, response: Response) -> Response:
        # Error responses (a legacy 404) count too: they are compared like any answer.
        endpoint = self.toolkit.registry.endpoints.get(request.endpoint or "")
        if endpoint is not None and endpoint.kind == "read":
            request.environ[self.CHECK_KEY] = request.full_path
            if self.outer_context is None and threading.get_ident() == self.owner:
                self.outer_context = _current_app_context()
        return response

    def check_wsgi(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        started: list[Any] = []

        def capture(status: str, headers: Any, _exc_info: Any = None) -> Any:
            started.extend((status, headers))
            return lambda _data: None

        body_parts = self.inner_wsgi(environ, capture)
        try:
            body = b"".join(body_parts)
        finally:
            close = getattr(body_parts, "close", None)
            if close is not None:
                close()  # what queues the comparison
        status, headers = started[0], started[1]
        checked_path = environ.get(self.CHECK_KEY)
        if checked_path is not None:
            problems = self.new_problems(expected=1)
            if problems:
                if status.startswith("500"):  # e.g. refuse_fallbacks' verdict: keep it
                    problems.insert(0, body.decode())
                message = f"{checked_path}: " + "; ".join(problems)
                body = json.dumps({"error": {"status": 500, "message": message}}).encode()
                status = "500 INTERNAL SERVER ERROR"
                headers = [
                    (name, value)
                    for name, value in headers
                    if name.lower() not in ("content-type", "content-length")
                ]
                headers += [
                    ("Content-Type", "application/json"),
                    ("Content-Length", str(len(body))),
                ]
        start_response(status, headers)
        return [body]

    def new_problems(self, expected: int | None) -> list[str]:
        """What is wrong with the comparisons recorded since the last check: any outcome
        but a match, or (``expected``) a different number of them."""
        if not self.pool.drain(DRAIN_SECONDS):
            return [f"its comparison did not finish within {DRAIN_SECONDS:g} s"]
        query = (
            select(comparisons.c.id, comparisons.c.outcome, comparisons.c.diff)
            .where(comparisons.c.id > self.seen_id)
            .order_by(comparisons.c.id)
        )
        with self.toolkit.engine.connect() as connection:
            rows = connection.execute(query).all()
        if rows:
            self.seen_id = rows[-1].id
        self.compared += len(rows)
        problems = [f"comparison {row.outcome}: {row.diff}" for row in rows if row.outcome != MATCH]
        if expected is not None and len(rows) != expected:
            problems.append(f"{len(rows)} comparisons recorded, expected {expected}")
        return problems

    def teardown(self, _error: BaseException | None) -> None:
        # Not any other app context: the toolkit pushes short ones of its own, and every
        # comparison runs in one.
        if not self.closed and _current_app_context() is self.outer_context:
            self.close()

    def close(self) -> None:
        """Drain and stop the pool; raise if a comparison went wrong unseen."""
        self.closed = True
        problems = self.new_problems(expected=None)
        self.pool.shutdown(DRAIN_SECONDS)
        self.toolkit.engine.dispose()  # the query above may have reopened the pool
        if problems:
            raise AssertionError("after the test: " + "; ".join(problems))


def _current_app_context() -> object:
    proxy: Any = app_ctx  # a LocalProxy: its target is what identifies the context
    return proxy._get_current_object()
