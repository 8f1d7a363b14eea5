"""The shop's own CLI, as an operator runs it: ``flask --app legacy_app cqrs ...``.

Each call is a new process on the scenario's database (``DATABASE_URL``), like a shell
next to the servers: flag changes reach the running workers through the database, and
``verify`` judges the read models from the outside.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from .servers import REPO_ROOT, shop_environment

CLI_TIMEOUT = 120.0


@dataclass(frozen=True)
class CliRun:
    exit_code: int
    stdout: str
    stderr: str


def flask_cqrs(database_url: str, *args: str) -> CliRun:
    command = [sys.executable, "-m", "flask", "--app", "legacy_app", "cqrs", *args]
    finished = subprocess.run(
        command,
        cwd=REPO_ROOT,
        env={**shop_environment(), "DATABASE_URL": database_url},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )
    return CliRun(finished.returncode, finished.stdout, finished.stderr)


def set_flag(
    database_url: str,
    endpoints: list[str],
    stage: str,
    reason: str,
    *,
    force: bool = False,
    percent: float | None = None,
) -> CliRun:
    args = ["flags", "set", *endpoints, stage, "--reason", reason]
    if percent is not None:
        args += ["--percent", f"{percent:g}"]
    if force:
        args.append("--force")
    return flask_cqrs(database_url, *args)


@dataclass(frozen=True)
class VerifyOutcome:
    """``flask cqrs verify --json``: its exit code and the rows it found differing."""

    exit_code: int
    drifting_rows: int
    drifting_models: tuple[str, ...]
    repaired_rows: int
    output: str

    @property
    def clean(self) -> bool:
        return self.exit_code == 0 and self.drifting_rows == 0

    def describe(self) -> str:
        if self.drifting_rows == 0 and self.exit_code == 0:
            return "verify exit 0, no drift"
        models = ", ".join(self.drifting_models) or "-"
        repaired = f", repaired {self.repaired_rows}" if self.repaired_rows else ""
        return (
            f"verify exit {self.exit_code}, {self.drifting_rows} row(s) drifting "
            f"in {models}{repaired}"
        )


def verify(database_url: str, *, repair: bool = False) -> VerifyOutcome:
    run = flask_cqrs(database_url, "verify", "--json", *(["--repair"] if repair else []))
    document = _json_document(run.stdout)
    drifting = 0
    repaired = 0
    models = []
    for model in document.get("models", []):
        rows = int(model.get("missing", 0)) + int(model.get("extra", 0))
        rows += int(model.get("different", 0))
        if rows:
            models.append(str(model.get("name")))
        drifting += rows
        fixed = model.get("repaired") or {}
        repaired += sum(int(fixed.get(k, 0)) for k in ("inserted", "deleted", "updated"))
    output = run.stdout[-2000:] + run.stderr[-2000:]
    return VerifyOutcome(run.exit_code, drifting, tuple(models), repaired, output)


def _json_document(stdout: str) -> dict[str, Any]:
    """The JSON document verify prints (log lines may come before it)."""
    start = stdout.find("{")
    if start < 0:
        return {}
    try:
        loaded = json.loads(stdout[start:])
    except ValueError:
        return {}
    return loaded if isinstance(loaded, dict) else {}
