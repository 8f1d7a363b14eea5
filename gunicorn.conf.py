"""gunicorn settings for serving the shop (``make run``, scripts/serve-in-background.sh).

Only what the API contract depends on lives here; workers and the address stay on the
command line. gunicorn enforces these limits while reading the request line and headers,
before the app sees the request, and answers a refusal with its own HTML page (414, 431):
docs/api.md states them as part of the contract, so change both together
(tests/e2e/test_gunicorn_limits.py checks that they agree). The body size limit is the app's
(MAX_CONTENT_LENGTH, a JSON 413).
"""

import logging

# The request line ("GET /api/products?q=... HTTP/1.1"), in bytes. The longest the documented
# parameters make (a 200-character q of 4-byte characters, percent-encoded) is about 2.5 KB.
limit_request_line = 4094
# Header fields per request.
limit_request_fields = 100
# One header field ("Name: value" and its CRLF), in bytes.
limit_request_field_size = 8190


def on_starting(server: object) -> None:
    """The toolkit reports its findings (write guard, fallbacks, demotions, refresh failures,
    flag changes) through the "cqrs" loggers and prints nothing by itself: show them on
    stderr beside gunicorn's own lines. Set in the master before it forks, so every worker
    inherits it; not through logconfig_dict, which would also switch on the access log."""
    handler = logging.StreamHandler()
    handler.setFormatter(
        logging.Formatter(
            "%(asctime)s [%(process)d] [%(levelname)s] %(name)s: %(message)s",
            "[%Y-%m-%d %H:%M:%S %z]",
        )
    )
    toolkit = logging.getLogger("cqrs")
    toolkit.addHandler(handler)
    toolkit.setLevel(logging.WARNING)
