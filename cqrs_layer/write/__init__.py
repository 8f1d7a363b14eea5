"""The write side: command bus and its middleware, unit of work, outbox, idempotency keys,
and the write guard. Builds on :mod:`cqrs_layer.core` only. Private."""
