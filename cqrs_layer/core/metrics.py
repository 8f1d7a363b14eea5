"""The toolkit's Prometheus metrics, as module-level singletons.

prometheus-client refuses to register a name twice in one registry, so the collectors are
created once per process here (a module body runs once however often it is imported) and
every app shares them; tests compare before/after values instead of absolute ones.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

commands_total = Counter(
    "cqrs_commands_total",
    "Commands handled, by command type and outcome (ok, rejected, error).",
    ["command", "outcome"],
)

command_duration_seconds = Histogram(
    "cqrs_command_duration_seconds",
    "Time to handle a command, transaction included.",
    ["command"],
)

events_recorded_total = Counter(
    "cqrs_events_recorded_total",
    "Domain events committed to the outbox.",
    ["event_type"],
)

unguarded_writes_total = Counter(
    "cqrs_unguarded_writes_total",
    "Writes to tables a read model depends on, made outside any command.",
    ["table"],
)

comparisons_total = Counter(
    "cqrs_comparisons_total",
    "Comparisons of the legacy and new read paths, by endpoint and outcome.",
    ["endpoint", "outcome"],
)

comparisons_dropped_total = Counter(
    "cqrs_comparisons_dropped_total",
    "Comparisons not run because the comparison queue was full.",
)

declined_total = Counter(
    "cqrs_declined_total",
    "Requests a new path declined (its build raised Decline): legacy answered them.",
    ["endpoint", "reason"],
)
fallbacks_total = Counter(
    "cqrs_fallbacks_total",
    "Requests the new read path failed (error or timeout) and legacy served instead.",
    ["endpoint", "reason"],
)

write_timeouts_total = Counter(
    "cqrs_write_timeouts_total",
    "Writes of wrapped write endpoints that gave up waiting for a lock or a statement "
    "(CQRS_WRITE_TIMEOUT_MS) and answered 503.",
    ["endpoint"],
)
