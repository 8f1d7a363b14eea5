"""Every blinker signal the toolkit sends, on one private namespace.

Receivers are called with ``sender`` and keyword arguments only; accept ``**extra`` so new
arguments never break you. blinker holds receivers weakly by default and calls them in no
particular order, so the toolkit itself routes events through one dispatcher
(:mod:`cqrs_layer.projections`) whose failure policy is explicit; these signals are for
everything else (logging, cache invalidation, notifications).
"""

from blinker import Namespace

_signals = Namespace()

#: Sent inside the command's transaction, after its events are in the outbox and before
#: commit. ``events``: list of :class:`cqrs_layer.outbox.StoredEvent`; ``session``. A
#: receiver that raises aborts the command (nothing is written).
events_recorded = _signals.signal("events-recorded")

#: Sent after the transaction committed. ``events``: list of StoredEvent. Failures here are
#: logged and never undo the write.
events_committed = _signals.signal("events-committed")

#: Sent when a command finished: ``command``, ``result`` or ``error``, ``duration_s``.
command_handled = _signals.signal("command-handled")

#: Sent when a write to a guarded table happened outside any command: ``tables``, ``strict``.
unguarded_write = _signals.signal("unguarded-write")
