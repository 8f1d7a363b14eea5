"""The toolkit's loggers: one per concern, all under ``cqrs``.

An operator silences or routes a concern by its name, whatever module reports it
(``logging.getLogger("cqrs.fallback").setLevel(logging.ERROR)``); a test asserts a finding
with pytest's ``caplog`` (``caplog.at_level(logging.WARNING, logger="cqrs.guard")``).

- ``cqrs.guard``: a write outside a command to a table that a read model without change
  capture reads;
- ``cqrs.fallback``: a read served by legacy because its read-model path failed, timed out
  or was behind, or because its flag could not be evaluated;
- ``cqrs.demotion``: a live endpoint put back to shadow automatically;
- ``cqrs.refresh``: read-model rows that could not be refreshed (their keys stay pending);
- ``cqrs.projection``: hand-written projections that failed (refresh-by-key took over);
- ``cqrs.flags``: every stage change (the audit log's line), an unreadable flags table, an
  unknown stored stage;
- ``cqrs.comparison``: a comparison that could not be run;
- ``cqrs.events``: an events-committed receiver that raised (the write stands);
- ``cqrs.writes``: a write that gave up waiting (``write_timeout``), an idempotent
  response that could not be stored.

The package adds a :class:`logging.NullHandler` to ``cqrs``: a library must not print to a
terminal it does not own, so without a logging set-up in the app nothing is printed
(``logging.basicConfig()`` or the server's log configuration shows them).
"""

from __future__ import annotations

import logging

ROOT = logging.getLogger("cqrs")
ROOT.addHandler(logging.NullHandler())

guard = logging.getLogger("cqrs.guard")
fallback = logging.getLogger("cqrs.fallback")
demotion = logging.getLogger("cqrs.demotion")
refresh = logging.getLogger("cqrs.refresh")
projection = logging.getLogger("cqrs.projection")
flags = logging.getLogger("cqrs.flags")
comparison = logging.getLogger("cqrs.comparison")
events = logging.getLogger("cqrs.events")
writes = logging.getLogger("cqrs.writes")

LOGGERS = (guard, fallback, demotion, refresh, projection, flags, comparison, events, writes)
