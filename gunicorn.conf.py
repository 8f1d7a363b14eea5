"""gunicorn settings for serving the shop (``make run``, scripts/serve-in-background.sh).

Only what the API contract depends on lives here; workers and the address stay on the
command line. gunicorn enforces these limits while reading the request line and headers,
before the app sees the request, and answers a refusal with its own HTML page (414, 431):
docs/api.md states them as part of the contract, so change both together
(tests/e2e/test_gunicorn_limits.py checks that they agree). The body size limit is the app's
(MAX_CONTENT_LENGTH, a JSON 413).
"""

# The request line ("GET /api/products?q=... HTTP/1.1"), in bytes. The longest the documented
# parameters make (a 200-character q of 4-byte characters, percent-encoded) is about 2.5 KB.
limit_request_line = 4094
# Header fields per request.
limit_request_fields = 100
# One header field ("Name: value" and its CRLF), in bytes.
limit_request_field_size = 8190
