"""The read side: projections, backfill, verify and the query bus, all driven by the read
models' declarations. Builds on :mod:`cqrs_layer.core` only. Private."""
