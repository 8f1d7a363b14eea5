"""The JSON error handler keeps the headers an HTTP error carries (WWW-Authenticate, ...)."""

from __future__ import annotations

from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import TooManyRequests, Unauthorized

from legacy_app import create_app


def make_app():
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite://"})

    @app.get("/test/unauthorized")
    def unauthorized():
        raise Unauthorized(www_authenticate=WWWAuthenticate("bearer", {"realm": "shop"}))

    @app.get("/test/slow-down")
    def slow_down():
        raise TooManyRequests(retry_after=30)

    return app


def test_www_authenticate_survives_the_json_rendering():
    response = make_app().test_client().get("/test/unauthorized")

    assert response.status_code == 401
    assert response.mimetype == "application/json"
    assert response.headers["WWW-Authenticate"] == "Bearer realm=shop"
    assert response.get_json()["error"]["code"] == "unauthorized"


def test_retry_after_survives_and_the_body_stays_json():
    response = make_app().test_client().get("/test/slow-down")

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "30"
    assert response.headers.getlist("Content-Type") == ["application/json"]
    assert int(response.headers["Content-Length"]) == len(response.get_data())
