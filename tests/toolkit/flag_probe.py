"""The toy app plus a probe, run in other processes by test_flag_propagation.py.

``gunicorn 'tests.toolkit.flag_probe:gunicorn_app()'`` serves it (the database URL comes
from ``FLAG_PROBE_DATABASE_URL``); ``python -m tests.toolkit.flag_probe URL`` watches the
probed endpoint's flag in a loop and prints one JSON line per flag it sees.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from flask import Flask, request

from cqrs_layer.ops.context import toolkit_of

from .toyapp import create_toy_app

PROBED = "library.get_book"
SUBJECTS = [f"user-{n}" for n in range(100)]
POLL_SECONDS = 0.005


def create_probe_app(database_url: str) -> Flask:
    app = create_toy_app({"SQLALCHEMY_DATABASE_URI": database_url})

    @app.get("/_probe/flag/<endpoint>")
    def probe(endpoint: str) -> dict[str, Any]:
        # Holding the worker a moment makes concurrent probes spread over every worker.
        time.sleep(float(request.args.get("hold", "0")))
        toolkit = toolkit_of(app)
        route = toolkit.router.route(endpoint, toolkit.registry.endpoint(endpoint).kind, request)
        return {"pid": os.getpid(), "stage": route.stage, "serve_new": route.serve_new}

    return app


def gunicorn_app() -> Flask:
    """The app gunicorn --preload builds in its master, before forking the workers."""
    app = create_probe_app(os.environ["FLAG_PROBE_DATABASE_URL"])
    with app.app_context():
        # Load the flag snapshot (and pool a connection) pre-fork, as a warm-up would:
        # the workers must neither trust that snapshot nor share that connection.
        toolkit_of(app).flags.effective(PROBED, "read")
    return app


def watch(database_url: str) -> None:
    app = create_probe_app(database_url)
    flags = toolkit_of(app).flags
    last = None
    while True:
        with app.app_context():
            current = flags.effective(PROBED, "read")
        if current != last:
            stage, percent, _ = current
            line = {"stage": stage, "percent": percent, "served": served(app)}
            print(json.dumps(line), flush=True)
            last = current
        time.sleep(POLL_SECONDS)


def served(app: Flask) -> list[str]:
    """The subjects this process serves the read model: must agree across processes."""
    router = toolkit_of(app).router
    chosen = []
    for subject in SUBJECTS:
        with app.test_request_context("/", headers={"X-CQRS-Subject": subject}):
            if router.route(PROBED, "read", request).serve_new:
                chosen.append(subject)
    return chosen


if __name__ == "__main__":
    watch(sys.argv[1])
