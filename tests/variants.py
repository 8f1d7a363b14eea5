"""The apps the behaviour suite runs against: the same shop, its endpoints at other stages.

- ``legacy``: every endpoint served by its legacy view (the toolkit is wired but idle);
- ``commands``: every write endpoint dispatches its command, reads stay legacy;
- ``read-models``: writes through commands AND the wrapped reads from the read models
  (stage ``complete``).

``pytest --cqrs-read-stage=shadow|live [--cqrs-write-stage=command]`` (the toolkit's pytest
plugin, :mod:`cqrs_layer.testing.plugin`) runs the suite under that one combination
instead, with every comparison checked: any answer of the new path that differs from
legacy's fails the test.

The behaviour suite builds its data with factories, i.e. direct ORM writes that bypass
the commands, so no events reach the read models. For the variants that read them a
TEST-HARNESS-ONLY sync rebuilds the read models (``flask cqrs backfill``) before the next
request whenever such an unguarded write happened since the last sync (the write guard's
``unguarded-write`` signal says so). Writes through the API go through commands and
projections and need no help, so the suite still checks the projections.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from flask import Flask

from cqrs_layer import signals
from cqrs_layer.testing import ComparisonCheck, CQRSHarness, install, stage_settings
from legacy_app import create_app


@dataclass(frozen=True)
class Variant:
    name: str
    read_stage: str = "legacy"
    write_stage: str = "legacy"
    #: More settings, e.g. per-endpoint exceptions (``CQRS_ENDPOINT_STAGES``).
    settings: dict[str, Any] = field(default_factory=dict)

    def __hash__(self) -> int:  # a pytest parameter; the settings dict is not hashable
        return hash(self.name)

    def with_settings(self, **settings: Any) -> Variant:
        names = "+".join(f"{key.removeprefix('CQRS_').lower()}" for key in settings)
        return Variant(f"{self.name}+{names}", self.read_stage, self.write_stage, settings)

    def build(self, config: dict[str, Any]) -> Flask:
        # Pinned, not left to the FLASK_CQRS_* environment variables a developer may have.
        settings = {
            **stage_settings(self.read_stage, self.write_stage),
            "CQRS_WRITE_GUARD": "warn",
            **self.settings,
        }
        app = create_app({**settings, **config})
        if self.read_stage != "legacy":
            ReadModelSync(app)
        app.extensions["tests.comparison_check"] = install(app)
        return app


LEGACY = Variant("legacy")
COMMANDS = Variant("commands", write_stage="command")
READ_MODELS = Variant("read-models", read_stage="complete", write_stage="command")
DEFAULT_VARIANTS = (LEGACY, COMMANDS, READ_MODELS)


def variants_for(harness: CQRSHarness) -> tuple[Variant, ...]:
    """The plugin's stages when chosen on the command line, else the default variants."""
    if not harness.active:
        return DEFAULT_VARIANTS
    read, write = harness.read_stage or "legacy", harness.write_stage or "legacy"
    return (Variant(f"reads-{read}+writes-{write}", read, write),)


def comparison_check(app: Flask) -> ComparisonCheck | None:
    check: ComparisonCheck | None = app.extensions["tests.comparison_check"]
    return check


class ReadModelSync:
    """Backfills the app's read models before a request if unguarded writes happened."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.pending = threading.Event()
        self.lock = threading.Lock()
        self.backfills = 0
        # blinker holds receivers weakly: the app keeps this object (and its method) alive.
        app.extensions["tests.read_model_sync"] = self
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
            result = self.app.test_cli_runner().invoke(args=["cqrs", "backfill"])
            assert result.exit_code == 0, result.output
            self.backfills += 1


def read_model_sync(app: Flask) -> ReadModelSync:
    """The app's sync; on an app that reads no read model, one that starts out stale."""
    sync: ReadModelSync | None = app.extensions.get("tests.read_model_sync")
    if sync is None:
        sync = ReadModelSync(app)
        sync.pending.set()  # whatever was written before it existed
    return sync
