"""The bottom layer: what every other layer builds on and nothing here builds on them.

Messages, errors, the toolkit's tables, SQL helpers, read-model declarations and the
registry of what an app declared, signals, correlation ids, metrics and settings.
Private: import the public names from :mod:`cqrs_layer` (and :mod:`cqrs_layer.sql`,
:mod:`cqrs_layer.schema`); the layout of this package may change.
"""
