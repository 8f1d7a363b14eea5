"""The apps the behaviour suite runs against: the same shop, served by different paths.

- ``legacy``: every endpoint served by its legacy view (the toolkit is wired but idle);
- ``commands``: every write endpoint dispatches its command, reads stay legacy;
- ``read-models``: writes through commands AND the wrapped reads from the read models
  (stage ``complete``);
- ``shadow`` (opt-in): writes through commands, reads at ``shadow`` with every request
  compared: the legacy answer is served and the read model's answer compared with it;
- ``live`` (opt-in): writes through commands, reads at ``live`` for everyone: the read
  model's answer is served (never a fallback) and legacy's compared with it.

The behaviour suite builds its data with factories, i.e. direct ORM writes that bypass
the commands, so no events reach the read models. For the variants that read them
(``read-models``, ``shadow``, ``live``) a TEST-HARNESS-ONLY sync rebuilds the read models
(``backfill_all``) before the next request whenever such an unguarded write happened since
the last sync (the write guard's ``unguarded-write`` signal says so). Writes through the
API go through commands and projections and need no help, so the suite still checks the
projections.

In ``shadow`` and ``live`` the comparison runs off the request path, on the toolkit's
worker pool. The harness (:class:`ComparisonCheck`) waits for it after every wrapped read,
before the test can change the data behind it, and turns the response into a 500 unless
exactly one comparison was recorded and it matched: both paths must give the same answer.

``shadow`` and ``live`` run the whole suite twice more, which the default run cannot
afford (see tests/cqrs/test_stage_combinations.py, which covers every stage combination
in the default run): name them in ``SHOP_APP_VARIANTS`` to run them, e.g.
``SHOP_APP_VARIANTS=shadow,live pytest tests/api``.
"""

from __future__ import annotations

import json
import os
import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, Response, current_app, make_response, request
from flask.globals import app_ctx
from sqlalchemy import select

from cqrs_layer import shadow, signals
from cqrs_layer.backfill import backfill_all
from cqrs_layer.comparisons import MATCH, comparisons
from cqrs_layer.routing import READ_MODEL, SERVED_BY_HEADER
from legacy_app import create_app
from legacy_app.extensions import db

AppFactory = Callable[[dict[str, Any]], Flask]


#: Budgets no loaded test machine reaches: a slow answer must not become a fallback or a
#: timed-out comparison, which the checks below would report as failures.
GENEROUS_BUDGETS = {
    "CQRS_READ_TIMEOUT_MS": 60_000,
    "CQRS_COMPARISON_TIMEOUT_MS": 60_000,
}
#: How long a request waits for its comparison before the harness gives up.
DRAIN_SECONDS = 60.0


def _create(config: dict[str, Any], write_mode: str, read_mode: str) -> Flask:
    # Pinned, not left to the CQRS_* environment variables a developer may have set.
    modes = {
        "CQRS_DEFAULT_WRITE_MODE": write_mode,
        "CQRS_DEFAULT_READ_MODE": read_mode,
        "CQRS_WRITE_GUARD": "warn",
    }
    return create_app({**modes, **config})


def legacy_app(config: dict[str, Any]) -> Flask:
    return _create(config, "legacy", "legacy")


def commands_app(config: dict[str, Any]) -> Flask:
    return _create(config, "command", "legacy")


def read_models_app(config: dict[str, Any]) -> Flask:
    # A generous read budget: a loaded test machine must not turn a slow read into a
    # fallback (which the check below would report as a failure).
    app = _create({**GENEROUS_BUDGETS, **config}, "command", "complete")
    ReadModelSync(app)
    app.after_request(refuse_fallbacks)
    return app


def shadow_app(config: dict[str, Any]) -> Flask:
    return stage_app(config, write_stage="command", read_stage="shadow")


def live_app(config: dict[str, Any]) -> Flask:
    return stage_app(config, write_stage="command", read_stage="live")


def stage_app(config: dict[str, Any], *, write_stage: str, read_stage: str) -> Flask:
    """The shop with every write endpoint at ``write_stage`` and every read endpoint at
    ``read_stage``, its read models kept in sync with the factories' writes, and every
    comparison (100% sampled) checked. Reads that serve the read model (``live`` at 100%,
    ``complete``) must never fall back to legacy."""
    settings = {**GENEROUS_BUDGETS, "CQRS_DEFAULT_SAMPLE_RATE": 1.0, **config}
    app = _create(settings, write_stage, read_stage)
    ReadModelSync(app)
    # The comparison check wraps the WSGI app, so it sees the fallback check's verdict.
    if read_stage in ("shadow", "live"):
        ComparisonCheck(app)
    if read_stage in ("live", "complete"):
        app.after_request(refuse_fallbacks)
    return app


def refuse_fallbacks(response: Response) -> Response:
    """Every wrapped read must be answered by the read model. The toolkit serves the
    legacy answer when the read path fails (the user never pays for the experiment), which
    would hide a broken query handler from the suite: turn that into a failure here."""
    wrapped = current_app.extensions["cqrs"].endpoints.get(request.endpoint)
    served_by = response.headers.get(SERVED_BY_HEADER)
    if wrapped is None or wrapped.kind != "read" or served_by == READ_MODEL:
        return response
    message = f"{request.endpoint} was served by {served_by!r}, not by the read model"
    return make_response(({"error": {"status": 500, "message": message}}, 500))


class ReadModelSync:
    """Backfills the app's read models before a request if unguarded writes happened."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.pending = threading.Event()
        self.lock = threading.Lock()
        self.backfills = 0
        # blinker holds receivers weakly: the app keeps this object (and its method) alive.
        app.extensions["test_read_model_sync"] = self
        signals.unguarded_write.connect(self.mark_stale, sender=app)
        app.before_request(self.sync)

    def mark_stale(self, _sender: Flask, **_extra: Any) -> None:
        self.pending.set()

    def sync(self) -> None:
        if not self.pending.is_set():
            return
        with self.lock:  # concurrent requests: one rebuild, the others wait for it
            if not self.pending.is_set():
                return
            self.pending.clear()
            read_models = self.app.extensions["cqrs"].read_models.values()
            backfill_all(db.engine, list(read_models))
            self.backfills += 1


class ComparisonCheck:
    """After every wrapped read: wait for its comparison, and answer 500 (naming what went
    wrong) unless exactly one comparison was recorded for it and it matched.

    The toolkit queues a comparison when the server closes the response, so the check
    wraps the WSGI app: it reads and closes the app's response (as a server would), waits
    for the pool, and only then hands the response, or its verdict, to the client.
    Waiting before the client has it keeps the comparison ahead of the test's next factory
    write, which would otherwise change the data under it and fake a mismatch.

    At the end of the test, when the app context the checked requests ran in (the ``app``
    fixture's) is popped, :meth:`close` checks once more and shuts the pool down: an idle
    pool's threads would otherwise live as long as the process, one set per test.
    """

    #: Set (in the environ) on the requests whose comparison must be checked.
    CHECK_KEY = "tests.comparison_check"

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.runner = shadow.runner_for(app)
        self.seen_id = 0
        self.compared = 0
        self.closed = False
        self.owner = threading.get_ident()
        #: The app context of the first checked request in the thread that built the app.
        self.outer_context: object | None = None
        app.extensions["test_comparison_check"] = self
        app.after_request(self.mark_for_check)
        app.teardown_appcontext(self.teardown)
        self.inner_wsgi = app.wsgi_app
        app.wsgi_app = self.check_wsgi  # type: ignore[method-assign]
        weakref.finalize(app, self.runner.shutdown, 0.0)  # if never torn down

    def mark_for_check(self, response: Response) -> Response:
        # Error responses (a legacy 404) count too: they are compared like any answer.
        wrapped = current_app.extensions["cqrs"].endpoints.get(request.endpoint)
        if wrapped is not None and wrapped.kind == "read":
            request.environ[self.CHECK_KEY] = request.full_path
            if self.outer_context is None and threading.get_ident() == self.owner:
                self.outer_context = app_ctx._get_current_object()
        return response

    def check_wsgi(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        started: list[Any] = []
        body_parts = self.inner_wsgi(environ, lambda *args: started.extend(args))
        try:
            body = b"".join(body_parts)
        finally:
            close = getattr(body_parts, "close", None)
            if close is not None:
                close()  # what queues the comparison
        status, headers = started[0], started[1]
        checked_path = environ.get(self.CHECK_KEY)
        if checked_path is not None:
            with self.app.app_context():
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
        if not self.runner.drain(DRAIN_SECONDS):
            return [f"its comparison did not finish within {DRAIN_SECONDS:g} s"]
        engine = self.app.extensions["cqrs"].db.engine
        query = (
            select(comparisons.c.id, comparisons.c.outcome, comparisons.c.diff)
            .where(comparisons.c.id > self.seen_id)
            .order_by(comparisons.c.id)
        )
        with engine.connect() as connection:
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
        if not self.closed and app_ctx._get_current_object() is self.outer_context:
            self.close()

    def close(self) -> None:
        """Drain and stop the pool; raise if a comparison went wrong unseen."""
        self.closed = True
        problems = self.new_problems(expected=None)
        self.runner.shutdown(DRAIN_SECONDS)
        # The conftest disposed of the engine already; our query opened it again.
        self.app.extensions["cqrs"].db.engine.dispose()
        if problems:
            raise AssertionError("after the test: " + "; ".join(problems))


#: The variants every run uses unless ``SHOP_APP_VARIANTS`` names others.
DEFAULT_VARIANTS: dict[str, AppFactory] = {
    "legacy": legacy_app,
    "commands": commands_app,
    "read-models": read_models_app,
}
#: Run only when named in ``SHOP_APP_VARIANTS`` (each one runs the whole suite again).
OPT_IN_VARIANTS: dict[str, AppFactory] = {
    "shadow": shadow_app,
    "live": live_app,
}


def _named_variants() -> set[str]:
    return set(filter(None, os.environ.get("SHOP_APP_VARIANTS", "").split(",")))


#: What the conftest parametrizes ``app`` with: the defaults, plus the opt-in variants
#: named in ``SHOP_APP_VARIANTS`` (the conftest then picks the named ones).
APP_VARIANTS: dict[str, AppFactory] = {
    **DEFAULT_VARIANTS,
    **{name: factory for name, factory in OPT_IN_VARIANTS.items() if name in _named_variants()},
}
