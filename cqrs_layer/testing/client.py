"""A test client that closes its responses, as every WSGI server does.

Comparisons and fallback records are queued when the WSGI server closes the response,
after the user has it. Flask's test client closes a response only when asked to buffer
it, or when the test closes it; :class:`ClosingClient` buffers by default, so a test sees
the same order of events as production: the response, then the comparison.

    app.test_client_class = ClosingClient
"""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient
from werkzeug.test import TestResponse


class ClosingClient(FlaskClient):
    """A Flask test client that reads and closes every response, as a WSGI server does."""

    def open(
        self, *args: Any, buffered: bool = True, follow_redirects: bool = False, **kwargs: Any
    ) -> TestResponse:
        return super().open(*args, buffered=buffered, follow_redirects=follow_redirects, **kwargs)
