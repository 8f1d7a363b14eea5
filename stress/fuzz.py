"""Fuzzing from the OpenAPI document: what /openapi.json promises, the server must keep.

schemathesis reads the running server's own ``/openapi.json`` and generates requests for
every operation, valid ones (positive) and invalid ones (negative), ``fuzz_examples`` each,
within ``fuzz_seconds`` per write path. Every response is checked against the document:
no 5xx, the status is one the operation documents, the content type, headers and body
match what it documents. Done twice on one copy of the shop: writes on their legacy views,
then on their commands. Afterwards ``flask cqrs verify``: after the legacy writes it must
find the drift they cause (and repair it), after the command writes it must be clean.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from .context import ScenarioContext
from .results import ScenarioResult
from .servers import running
from .shop_cli import verify

#: What "conforms to the document" means here; schemathesis's other checks judge API design
#: choices (e.g. that unknown query parameters are refused, which docs/api.md says they are not).
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
REQUEST_TIMEOUT = 30.0
#: Distinct failures kept per run (operation + what failed), each with one example.
MAX_FAILURES = 20


@dataclass
class FuzzLog:
    cases: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    served_by: Counter[str] = field(default_factory=Counter)
    #: "METHOD path: failure title" -> one example (the request and what was wrong).
    failures: dict[str, str] = field(default_factory=dict)
    max_ms: float = 0.0
    skipped: list[str] = field(default_factory=list)  # (operation, mode) past the time limit
    impossible: list[str] = field(default_factory=list)  # (operation, mode) with no request

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status.startswith("5"))


def run(ctx: ScenarioContext) -> ScenarioResult:
    result = ScenarioResult("fuzz", ctx.backend)
    logs: dict[str, FuzzLog] = {}
    verifies: dict[str, Any] = {}
    with ctx.template.copy("fuzz") as url:
        for stage in ("legacy", "command"):
            env = {"FLASK_CQRS_DEFAULT_WRITE_STAGE": stage}
            with running(ctx.server(f"fuzz-{stage}", url, env=env)) as server:
                sizes = ctx.sizes
                log = fuzz(server.base_url, sizes.fuzz_examples, sizes.fuzz_seconds, ctx.seed)
            logs[stage] = log
            ctx.say(
                f"  writes on {stage}: {log.cases} cases, {log.server_errors} 5xx, "
                f"{len(log.failures)} distinct failures"
            )
            # Legacy writes record no events: their drift must be found (and repaired)
            # before the command path's writes are judged on a clean start.
            verifies[stage] = verify(url, repair=stage == "legacy")
    for log in logs.values():
        result.counts.fuzz_cases += log.cases
        result.counts.requests += log.cases
        result.counts.server_errors += log.server_errors
        result.counts.max_latency_ms = max(result.counts.max_latency_ms, log.max_ms)
        for status, number in log.statuses.items():
            result.statuses[status] = result.statuses.get(status, 0) + number
    result.counts.drift_after = verifies["command"].drifting_rows
    _judge(result, logs, verifies)
    result.details = {
        stage: {
            "cases": log.cases,
            "statuses": dict(log.statuses),
            "served_by": dict(log.served_by),
            "failures": log.failures,
            "skipped_for_time": log.skipped,
            "no_request_possible": log.impossible,
            "verify": verifies[stage].describe(),
        }
        for stage, log in logs.items()
    }
    return result


def fuzz(base_url: str, examples: int, seconds: float, seed: int) -> FuzzLog:
    """Every operation of the served document, both modes, within ``seconds``."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    log = FuzzLog()
    deadline = time.monotonic() + seconds
    for found in schema.get_all_operations():
        if not isinstance(found, Ok):  # the document itself is broken there: a failure too
            _keep(log, "the document", f"an operation schemathesis cannot read: {found.err()}")
            continue
        operation = found.ok()
        for mode in MODES:
            name = f"{operation.method.upper()} {operation.path}"
            if time.monotonic() > deadline:
                log.skipped.append(f"{name} ({mode.value})")
                continue
            try:
                _fuzz_operation(operation, mode, base_url, examples, seed, deadline, log)
            except Unsatisfiable:
                # No request of this mode exists (nothing to make invalid in GET /healthz).
                log.impossible.append(f"{name} ({mode.value})")
    return log


def _fuzz_operation(
    operation: Any,
    mode: GenerationMode,
    base_url: str,
    examples: int,
    seed: int,
    deadline: float,
    log: FuzzLog,
) -> None:
    name = f"{operation.method.upper()} {operation.path}"

    @hypothesis_seed(seed)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,  # no .hypothesis folder: every run starts from the seed
        phases=[Phase.explicit, Phase.generate],  # nothing fails here, so nothing to shrink
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def send(case: Any) -> None:
        if time.monotonic() > deadline:
            return
        started = time.perf_counter()
        try:
            response = case.call(base_url=base_url, timeout=REQUEST_TIMEOUT)
        except Exception as error:  # no answer: counted, like any client would see it
            log.cases += 1
            log.statuses["no answer"] += 1
            _keep(log, f"{name}: no answer", f"{type(error).__name__}: {error}")
            return
        log.max_ms = max(log.max_ms, (time.perf_counter() - started) * 1000)
        log.cases += 1
        log.statuses[str(response.status_code)] += 1
        # schemathesis keeps headers as lower-cased names -> lists of values.
        for served_by in response.headers.get("x-cqrs-served-by", []):
            log.served_by[served_by] += 1
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as group:
            for failure in group.exceptions:
                _keep_failure(log, name, case, response.status_code, failure)
        except Failure as failure:
            _keep_failure(log, name, case, response.status_code, failure)

    send()


def _keep_failure(log: FuzzLog, name: str, case: Any, status: int, failure: Failure) -> None:
    request = f"{case.method} {case.formatted_path} query={case.query!r} body={case.body!r}"
    _keep(log, f"{name}: {failure.title}", f"{request[:300]} -> {status}: {failure.message[:300]}")


def _keep(log: FuzzLog, key: str, example: str) -> None:
    if key not in log.failures and len(log.failures) < MAX_FAILURES:
        log.failures[key] = example


def _judge(result: ScenarioResult, logs: dict[str, FuzzLog], verifies: dict[str, Any]) -> None:
    cases = ", ".join(f"{stage}: {log.cases} cases" for stage, log in logs.items())
    errors = {stage: log.server_errors for stage, log in logs.items()}
    result.judge(
        "fuzz.no-5xx",
        not any(errors.values()),
        f"{cases}; 5xx: {errors}"
        + "".join(
            f"; {k}: {v}" for log in logs.values() for k, v in log.failures.items() if "Server" in k
        )[:600],
    )
    failures = [
        f"[{stage}] {key}: {example}"
        for stage, log in logs.items()
        for key, example in log.failures.items()
    ]
    result.judge(
        "fuzz.responses-match-the-document",
        not failures,
        f"{len(failures)} distinct failures"
        + (f": {' | '.join(failures[:4])}" if failures else ""),
    )
    skipped = sum(len(log.skipped) for log in logs.values())
    result.judge(
        "fuzz.every-operation-fuzzed",
        skipped == 0 and all(log.cases for log in logs.values()),
        f"{cases}; {skipped} (operation, mode) pairs skipped for the time limit",
    )
    legacy, command = verifies["legacy"], verifies["command"]
    result.judge(
        "fuzz.verify-finds-and-repairs-legacy-drift",
        legacy.exit_code == 0,
        f"after legacy-path fuzzing, verify --repair: {legacy.describe()}",
    )
    result.judge(
        "fuzz.verify-clean-after-command-writes",
        command.clean,
        f"after command-path fuzzing: {command.describe()}",
    )
