"""The request body size limit: refused with a 413 before anything reads the body.

Flask's ``MAX_CONTENT_LENGTH`` already stops a body from being *read* past the limit
(werkzeug raises while reading, which also covers chunked bodies of unknown length). This
adds the check on the declared ``Content-Length`` up front, so every endpoint answers the
same 413, including those that never read a body, and nothing is read or parsed first.
The request line and headers are limited by gunicorn before the app sees them
(gunicorn.conf.py).
"""

from __future__ import annotations

from flask import Flask, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

DEFAULT_MAX_CONTENT_LENGTH = 1024 * 1024  # 1 MiB: the largest valid body is ~30 KB


def refuse_oversized_bodies() -> None:
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    declared = request.content_length
    if limit is not None and declared is not None and declared > limit:
        raise RequestEntityTooLarge()


def register_request_limits(app: Flask) -> None:
    app.before_request(refuse_oversized_bodies)
