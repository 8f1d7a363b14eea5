"""Idempotency keys: a retried command request replays its first response.

The first successful response to a request carrying ``Idempotency-Key`` is stored in
``cqrs_idempotency_keys`` in the SAME transaction as the command's writes (a
``before_commit`` hook), so either both exist or neither does. The table's primary key
(endpoint, key) decides races: of two concurrent requests with one key only one insert
succeeds; the other rolls back its whole command and replays the winner's response.
Failed requests (4xx/5xx) are not stored, so a corrected retry can proceed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import Request, Response
from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import IntegrityError
from werkzeug.datastructures import Headers

from ..core.errors import ConcurrencyConflict, ValidationFailed
from ..core.tables import idempotency_keys

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 200

# Per-response headers that must not be replayed: they describe this delivery, not the result.
_NOT_REPLAYED = frozenset(
    {"content-length", "date", "set-cookie", "x-request-id", "x-cqrs-served-by", "server"}
)


class KeyAlreadyUsed(ConcurrencyConflict):
    """Another request with the same key committed first."""


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
    key = key.strip()
    if not 1 <= len(key) <= MAX_KEY_LENGTH:
        raise ValidationFailed(f"must be 1-{MAX_KEY_LENGTH} characters", field=HEADER)
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.full_path.encode(), request.get_data()):
        digest.update(len(part).to_bytes(8, "big"))  # length-prefixed: no ambiguous joins
        digest.update(part)
    return IdempotentRequest(endpoint, key, digest.hexdigest())


def replay_if_seen(connection: Connection, idem: IdempotentRequest) -> Response | None:
    """The stored response for this key, or None; 422 if the key came with another request."""
    row = (
        connection.execute(
            select(idempotency_keys).where(
                idempotency_keys.c.endpoint == idem.endpoint, idempotency_keys.c.key == idem.key
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    if row["request_hash"] != idem.request_hash:
        raise ValidationFailed(
            "was already used for a different request; send a new key", field=HEADER
        )
    headers = Headers([(name, value) for name, value in row["response_headers"]])
    response = Response(row["response_body"], status=row["status_code"], headers=headers)
    response.headers[REPLAYED_HEADER] = "true"
    return response


def save(connection: Connection, idem: IdempotentRequest, response: Response) -> None:
    """Store a successful response in the caller's transaction; raises KeyAlreadyUsed."""
    if not 200 <= response.status_code < 400:
        return
    headers = [[k, v] for k, v in response.headers.items() if k.lower() not in _NOT_REPLAYED]
    try:
        connection.execute(
            insert(idempotency_keys).values(
                endpoint=idem.endpoint,
                key=idem.key,
                request_hash=idem.request_hash,
                status_code=response.status_code,
                response_body=response.get_data(as_text=True),
                response_headers=headers,
                created_at=datetime.now(UTC).replace(tzinfo=None),
            )
        )
    except IntegrityError as exc:
        raise KeyAlreadyUsed(
            "a request with this Idempotency-Key was completed concurrently", field=HEADER
        ) from exc
