"""The apps the behaviour suite runs against: the same shop, served by different paths.

- ``legacy``: every endpoint served by its legacy view (the toolkit is wired but idle);
- ``commands``: every write endpoint dispatches its command, reads stay legacy;
- ``read-models``: writes through commands AND the wrapped reads from the read models.

The behaviour suite builds its data with factories, i.e. direct ORM writes that bypass
the commands, so no events reach the read models. For the ``read-models`` variant a
TEST-HARNESS-ONLY sync rebuilds the read models (``backfill_all``) before the next request
whenever such an unguarded write happened since the last sync (the write guard's
``unguarded-write`` signal says so). Writes through the API go through commands and
projections and need no help, so the suite still checks the projections.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, current_app, make_response, request

from cqrs_layer import signals
from cqrs_layer.backfill import backfill_all
from cqrs_layer.routing import READ_MODEL, SERVED_BY_HEADER
from legacy_app import create_app
from legacy_app.extensions import db

AppFactory = Callable[[dict[str, Any]], Flask]


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
    app = _create({"CQRS_READ_TIMEOUT_MS": 60_000, **config}, "command", "complete")
    ReadModelSync(app)
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


APP_VARIANTS: dict[str, AppFactory] = {
    "legacy": legacy_app,
    "commands": commands_app,
    "read-models": read_models_app,
}
