"""Idempotency keys: a retried write request replays its first response, on every path.

``cqrs_idempotency_keys`` holds one row per (endpoint, key): a hash of the request and,
once it succeeded, its response. The row is written in the SAME transaction as the write,
so the two exist together or not at all:

- a command inserts the whole row, key and response, just before it commits (:func:`save`);
- a legacy view commits by itself, so its key is *claimed* in the view's first commit
  (:func:`claim`, from :mod:`cqrs_layer.write.claims`) and the response stored on the claim
  once the view has answered (:func:`complete`); a view that answered an error gives the
  claim up (:func:`release`), so a corrected retry can proceed.

The primary key decides races: of two concurrent requests with one key only one insert
succeeds; the other's whole transaction rolls back, and it answers what the winner
answered (:func:`earlier_answer`), waiting a little for it if the winner is still
running. A claim still without a response :data:`IN_FLIGHT_SECONDS` after it was made
belongs to a request whose server stopped between its commit and storing its response:
its write happened, its answer is lost, and it is never run again.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Request, Response
from sqlalchemy import Connection, and_, delete, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from werkzeug.datastructures import Headers

from ..core.errors import CommandRejected, ConcurrencyConflict, ValidationFailed
from ..core.sql import gave_up_waiting
from ..core.tables import idempotency_keys

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 200
#: A claim without a response younger than this is taken for a request still running
#: (no request runs this long: gunicorn's default worker timeout is 30 s); older, for one
#: whose server stopped between its commit and storing its response.
IN_FLIGHT_SECONDS = 60
#: How often a request waiting for a concurrent one's response looks again.
POLL_SECONDS = 0.025

# Per-response headers that must not be replayed: they describe this delivery, not the result.
_NOT_REPLAYED = frozenset(
    {"content-length", "date", "set-cookie", "x-request-id", "x-cqrs-served-by", "server"}
)
# Printable ASCII, spaces inside: what fits any header and any column.
_KEY_CHARACTERS = frozenset(chr(code) for code in range(0x20, 0x7F))


class KeyAlreadyUsed(ConcurrencyConflict):
    """Another request with the same key committed first (or is committing): this one's
    writes are rolled back, and it answers with the other's response."""


class KeyInUse(CommandRejected):
    """A request with the same key is still running: retry shortly."""

    status, code, retry_after = 409, "idempotency_key_in_use", 1


class ResponseLost(CommandRejected):
    """The first request with this key was applied, but its response was never stored."""

    status, code = 409, "idempotency_response_lost"


@dataclass(frozen=True, slots=True)
class IdempotentRequest:
    endpoint: str
    key: str
    request_hash: str


def from_request(endpoint: str, request: Request) -> IdempotentRequest | None:
    """The request's idempotency identity, or None when it sent no key."""
    key = request.headers.get(HEADER)
    if key is None:
        return None
    key = key.strip(" \t")
    if not 1 <= len(key) <= MAX_KEY_LENGTH:
        raise ValidationFailed(f"must be 1-{MAX_KEY_LENGTH} characters", field=HEADER)
    if not _KEY_CHARACTERS.issuperset(key):
        raise ValidationFailed("must be printable ASCII characters", field=HEADER)
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.full_path.encode(), request.get_data()):
        digest.update(len(part).to_bytes(8, "big"))  # length-prefixed: no ambiguous joins
        digest.update(part)
    return IdempotentRequest(endpoint, key, digest.hexdigest())


def succeeded(response: Response) -> bool:
    """Whether ``response`` is one to keep and replay (failures are not kept)."""
    return 200 <= response.status_code < 400


# ---------------------------------------------------------------- the earlier request's answer


def earlier_answer(
    read: Callable[[], AbstractContextManager[Connection]],
    idem: IdempotentRequest,
    *,
    wait_ms: float,
) -> Response | None:
    """What an earlier request with ``idem``'s key answers this one: its response
    replayed, waiting up to ``wait_ms`` for it while that request is still running; None
    when no request holds the key. ``read()`` opens a connection (a fresh one per look,
    so each sees what committed since: ``engine.connect``).

    Raises ValidationFailed (422) when the key came with another request, KeyInUse (409,
    ``Retry-After``) when the earlier one is still running past the wait, ResponseLost
    (409) when its response will never come.
    """
    deadline = time.monotonic() + wait_ms / 1000
    while True:
        with read() as connection:
            row = _row(connection, idem)
        if row is None:
            return None
        if row.request_hash != idem.request_hash:
            raise ValidationFailed(
                "was already used for a different request; send a new key", field=HEADER
            )
        if row.status_code is not None:
            return _replay(row)
        if datetime.now(UTC).replace(tzinfo=None) - row.created_at > _IN_FLIGHT:
            raise ResponseLost(
                "a request with this Idempotency-Key was applied, but its response was "
                "not stored (the server stopped in between); it will not be applied "
                "again: read the resource to see its result, or send a new key",
                field=HEADER,
            )
        if time.monotonic() >= deadline:
            raise KeyInUse(
                "a request with this Idempotency-Key is still being processed; retry "
                "shortly to get its response",
                field=HEADER,
            )
        time.sleep(POLL_SECONDS)


_IN_FLIGHT = timedelta(seconds=IN_FLIGHT_SECONDS)


def _row(connection: Connection, idem: IdempotentRequest) -> Any:
    return connection.execute(select(idempotency_keys).where(_this_key(idem))).first()


def _replay(row: Any) -> Response:
    headers = Headers([(name, value) for name, value in row.response_headers])
    response = Response(row.response_body, status=row.status_code, headers=headers)
    response.headers[REPLAYED_HEADER] = "true"
    return response


# ---------------------------------------------------------------- writing the row


def save(connection: Connection, idem: IdempotentRequest, response: Response) -> None:
    """Store a successful response, key and all, in the caller's transaction; raises
    KeyAlreadyUsed."""
    if succeeded(response):
        _insert(connection, idem, **_stored(response))


def claim(connection: Connection, idem: IdempotentRequest) -> None:
    """Claim the key, without a response yet, in the caller's transaction; raises
    KeyAlreadyUsed."""
    _insert(connection, idem)


def complete(connection: Connection, idem: IdempotentRequest, response: Response) -> None:
    """Store the response on this request's claim."""
    connection.execute(
        update(idempotency_keys)
        .where(_this_key(idem), idempotency_keys.c.status_code.is_(None))
        .values(**_stored(response))
    )


def release(connection: Connection, idem: IdempotentRequest) -> None:
    """Give up this request's claim (it failed): the key is free again."""
    connection.execute(
        delete(idempotency_keys).where(_this_key(idem), idempotency_keys.c.status_code.is_(None))
    )


def _insert(connection: Connection, idem: IdempotentRequest, **response: Any) -> None:
    try:
        connection.execute(
            insert(idempotency_keys).values(
                endpoint=idem.endpoint,
                key=idem.key,
                request_hash=idem.request_hash,
                created_at=datetime.now(UTC).replace(tzinfo=None),
                **response,
            )
        )
    except IntegrityError as exc:
        raise KeyAlreadyUsed(
            "a request with this Idempotency-Key was completed concurrently", field=HEADER
        ) from exc
    except DBAPIError as exc:
        # PostgreSQL makes the insert wait for a concurrent, uncommitted insert of the same
        # key; past the write's bound that request is still running, not the table stuck.
        if connection.dialect.name == "postgresql" and gave_up_waiting(exc):
            raise KeyAlreadyUsed(
                "a request with this Idempotency-Key is being processed", field=HEADER
            ) from exc
        raise


def _stored(response: Response) -> dict[str, Any]:
    headers = [[k, v] for k, v in response.headers.items() if k.lower() not in _NOT_REPLAYED]
    return {
        "status_code": response.status_code,
        "response_body": response.get_data(as_text=True),
        "response_headers": headers,
    }


def _this_key(idem: IdempotentRequest) -> Any:
    return and_(idempotency_keys.c.endpoint == idem.endpoint, idempotency_keys.c.key == idem.key)
