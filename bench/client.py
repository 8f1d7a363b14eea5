"""One timed HTTP request: a new connection, the request, the whole body read.

Both paths pay the same client costs (connect, send, parse), so the ratio is the
server's difference; the absolute numbers include loopback HTTP, as a user would see.
"""

from __future__ import annotations

import http.client
import json
import time
from dataclasses import dataclass
from typing import Any

SERVED_BY_HEADER = "X-CQRS-Served-By"
TIMEOUT = 300.0


@dataclass(frozen=True)
class Reply:
    status: int
    served_by: str | None
    body: bytes
    ms: float

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


def request(port: int, method: str, path: str, body: Any = None) -> Reply:
    payload = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"} if payload is not None else {}
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        data = response.read()
    finally:
        connection.close()
    ms = (time.perf_counter() - started) * 1000
    return Reply(response.status, response.getheader(SERVED_BY_HEADER), data, ms)


def get(port: int, path: str) -> Reply:
    return request(port, "GET", path)


def post(port: int, path: str, body: Any = None) -> Reply:
    return request(port, "POST", path, body)
