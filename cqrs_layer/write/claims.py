"""Claiming an ``Idempotency-Key`` in the first commit of a view that commits by itself.

A legacy view writes through the app's session and commits when it sees fit, maybe more
than once. For the key to hold, its row must commit with the view's writes: while the
view runs inside :func:`claiming`, a hook on the session class inserts the claim just
before the session's first commit, so the claim and what that commit writes exist
together or not at all. A racing request with the same key fails that insert on the
primary key, and its whole transaction (its order, say) is rolled back with it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from . import idempotency

_listened: set[type[Session]] = set()


@dataclass
class Claim:
    idem: idempotency.IdempotentRequest
    #: The claim committed (with the view's first commit).
    claimed: bool = False
    #: Another request with the key committed first: this one's commit was refused.
    lost: bool = False
    #: Inserted in a commit that has not finished yet.
    pending: bool = False


_active: ContextVar[Claim | None] = ContextVar("cqrs_idempotency_claim", default=None)


def install(session_class: type[Session]) -> None:
    if session_class in _listened:
        return
    # First among the commit hooks: the claim must be taken before anything else in the
    # commit (a flush hitting a unique row the winner wrote) can fail for the same race.
    event.listen(session_class, "before_commit", _claim_before_commit, insert=True)
    event.listen(session_class, "after_commit", _after_commit)
    event.listen(session_class, "after_rollback", _after_rollback)
    _listened.add(session_class)


@contextmanager
def claiming(idem: idempotency.IdempotentRequest) -> Iterator[Claim]:
    """Claim ``idem``'s key in the first commit of the block; the Claim says how it went."""
    claim = Claim(idem)
    token = _active.set(claim)
    try:
        yield claim
    finally:
        _active.reset(token)


def _claim_before_commit(session: Session) -> None:
    claim = _active.get()
    if claim is None or claim.claimed or claim.lost or claim.pending:
        return
    try:
        idempotency.claim(session.connection(), claim.idem)
    except idempotency.KeyAlreadyUsed:
        claim.lost = True
        raise
    claim.pending = True


def _after_commit(_session: Session) -> None:
    claim = _active.get()
    if claim is not None and claim.pending:
        claim.pending, claim.claimed = False, True


def _after_rollback(_session: Session, *_args: Any) -> None:
    claim = _active.get()
    if claim is not None:
        claim.pending = False  # the commit failed after the claim: it went with the rest
