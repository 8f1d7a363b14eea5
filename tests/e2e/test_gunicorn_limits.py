"""The limits gunicorn.conf.py sets are the ones docs/api.md states, and gunicorn enforces them.

A real gunicorn (the repo's config, one sync worker, a throwaway migrated SQLite database) on
a free port. Requests are written on raw sockets, so the test controls every byte of the
request line and headers. What gunicorn refuses never reaches the app (HTML, as the docs say);
whatever gets through is the app's, so JSON, even when it is only just under a limit.
"""

from __future__ import annotations

import json
import os
import runpy
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from legacy_app.migrate import upgrade_database

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG = REPO_ROOT / "gunicorn.conf.py"
DOCS = REPO_ROOT / "docs" / "api.md"
START_TIMEOUT = 30.0

LIMITS = runpy.run_path(str(CONFIG))
LINE_LIMIT = LIMITS["limit_request_line"]
FIELDS_LIMIT = LIMITS["limit_request_fields"]
FIELD_SIZE_LIMIT = LIMITS["limit_request_field_size"]

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def exchange(port: int, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``raw`` and read the whole answer (the sync worker closes after it)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(raw)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


def get(target: str, extra_headers: list[str] = ()) -> bytes:
    lines = [f"GET {target} HTTP/1.1", "Host: shop", "Connection: close", *extra_headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def target_of_line_length(length: int) -> str:
    """A path that makes ``GET <path> HTTP/1.1`` exactly ``length`` bytes long."""
    frame = len("GET  HTTP/1.1")
    return "/" + "a" * (length - frame - 1)


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    database = tmp_path_factory.mktemp("gunicorn") / "shop.db"
    upgrade_database(f"sqlite:///{database}")  # /healthz is 503 until it is migrated
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn", "--config", str(CONFIG),
            "--workers", "1", "--bind", f"127.0.0.1:{port}", "--log-level", "warning",
            "legacy_app:create_app()",
        ],
        cwd=REPO_ROOT,
        env={**os.environ, "DATABASE_URL": f"sqlite:///{database}"},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                if exchange(port, get("/healthz"))[0] == 200:
                    break
            except OSError:
                pass
            assert server.poll() is None, "gunicorn exited"
            assert time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.1)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=20)


def answered_by_the_app(answer: tuple[int, dict[str, str], bytes], status: int) -> None:
    code, headers, body = answer
    assert code == status, body[:300]
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["error"]["status"] == status


def refused_by_gunicorn(answer: tuple[int, dict[str, str], bytes], status: int) -> None:
    code, headers, body = answer
    assert code == status, body[:300]
    assert headers["content-type"].startswith("text/html")


def test_the_config_sets_every_limit_explicitly():
    assert (LINE_LIMIT, FIELDS_LIMIT, FIELD_SIZE_LIMIT) == (4094, 100, 8190)


def test_docs_state_the_limits_gunicorn_enforces():
    docs = DOCS.read_text()

    for setting, value in LIMITS.items():
        if setting.startswith("limit_request_"):
            assert f"`{setting} = {value}`" in docs, setting


def test_a_request_line_at_the_limit_reaches_the_app(port):
    answered_by_the_app(exchange(port, get(target_of_line_length(LINE_LIMIT))), 404)


def test_a_request_line_over_the_limit_is_gunicorns_414(port):
    refused_by_gunicorn(exchange(port, get(target_of_line_length(LINE_LIMIT + 1))), 414)


def test_as_many_header_fields_as_allowed_reach_the_app(port):
    # Host and Connection, plus the rest up to the limit.
    extra = [f"X-Filler-{n}: x" for n in range(FIELDS_LIMIT - 2)]

    answered_by_the_app(exchange(port, get("/missing", extra)), 404)


def test_one_header_field_too_many_is_gunicorns_431(port):
    extra = [f"X-Filler-{n}: x" for n in range(FIELDS_LIMIT - 1)]

    refused_by_gunicorn(exchange(port, get("/missing", extra)), 431)


def test_a_header_field_at_the_size_limit_reaches_the_app(port):
    # The size counts "Name: value" and its CRLF.
    name = "X-Long: "
    field = name + "v" * (FIELD_SIZE_LIMIT - len(name) - 2)

    answered_by_the_app(exchange(port, get("/missing", [field])), 404)


def test_a_header_field_over_the_size_limit_is_gunicorns_431(port):
    name = "X-Long: "
    field = name + "v" * (FIELD_SIZE_LIMIT - len(name) - 1)

    refused_by_gunicorn(exchange(port, get("/missing", [field])), 431)


def test_the_body_limit_is_the_apps_json_413_sent_before_the_body_is(port):
    # Refused on the declared length alone: the app answers without waiting for the body
    # (so this test sends none, and the server must not hang waiting for it).
    head = (
        "POST /api/categories HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {1024 * 1024 + 1}\r\n\r\n"
    )

    answered_by_the_app(exchange(port, head.encode()), 413)
