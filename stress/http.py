"""One HTTP exchange on a new loopback connection; never raises for a failed one.

A request that gets no answer (a worker killed under it, a refused connection, a timeout)
is a :class:`Reply` with status 0 and the error's text: under attack that is an outcome to
count, not an exception to stop on. Only loopback URLs are accepted.
"""

from __future__ import annotations

import http.client
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

SERVED_BY_HEADER = "X-CQRS-Served-By"
NO_ANSWER = 0
#: Longer than any lock a scenario holds: a wait is measured, not cut short.
DEFAULT_TIMEOUT = 60.0


@dataclass(frozen=True)
class Reply:
    status: int  # 0: no answer
    body: bytes
    ms: float
    served_by: str | None = None
    retry_after: str | None = None
    error: str | None = None

    @property
    def answered(self) -> bool:
        return self.status != NO_ANSWER

    def json(self) -> Any:
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None


def request(
    base_url: str,
    method: str,
    path: str,
    body: Any = None,
    *,
    headers: dict[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Reply:
    parts = urlsplit(base_url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"refusing to send traffic off this machine: {base_url}")
    payload = None if body is None else json.dumps(body).encode()
    sent_headers = dict(headers or {})
    if payload is not None:
        sent_headers.setdefault("Content-Type", "application/json")
    started = time.perf_counter()
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        connection.request(method, path, body=payload, headers=sent_headers)
        response = connection.getresponse()
        data = response.read()
    except (OSError, http.client.HTTPException) as error:
        ms = (time.perf_counter() - started) * 1000
        return Reply(NO_ANSWER, b"", ms, error=f"{type(error).__name__}: {error}")
    finally:
        connection.close()
    ms = (time.perf_counter() - started) * 1000
    return Reply(
        response.status,
        data,
        ms,
        served_by=response.getheader(SERVED_BY_HEADER),
        retry_after=response.getheader("Retry-After"),
    )


def get(
    base_url: str, path: str, *, headers: dict[str, str] | None = None, timeout: float = 60.0
) -> Reply:
    return request(base_url, "GET", path, headers=headers, timeout=timeout)


def post(base_url: str, path: str, body: Any = None, *, timeout: float = 60.0) -> Reply:
    return request(base_url, "POST", path, body, timeout=timeout)
