"""HTTP-level errors (wrong method, unknown route) keep werkzeug's headers, in JSON."""

from __future__ import annotations

import pytest

from . import assert_error


def allowed(response) -> set[str]:
    return {method.strip() for method in response.headers["Allow"].split(",")}


@pytest.mark.parametrize(
    ("method", "url", "expected"),
    [
        ("delete", "/api/orders", {"POST", "OPTIONS"}),
        ("put", "/api/products/1", {"GET", "HEAD", "OPTIONS", "PATCH", "DELETE"}),
        ("post", "/healthz", {"GET", "HEAD", "OPTIONS"}),
    ],
)
def test_405_says_which_methods_are_allowed(client, method, url, expected):
    response = getattr(client, method)(url)

    assert_error(response, 405, "method_not_allowed")
    assert response.mimetype == "application/json"
    assert allowed(response) == expected


def test_unknown_routes_are_still_json_404(client):
    response = client.get("/no/such/page")

    assert_error(response, 404, "not_found")
    assert response.mimetype == "application/json"
