"""Error pages (JSON under /api/, HTML elsewhere) and CSRF, which the other tests switch off."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from .app.extensions import db
from .app.models import User
from .factories import UserFactory
from .harness import build_app


def test_unknown_api_path_is_a_json_404(blog_client):
    response = blog_client.get("/api/nothing-here")

    assert response.status_code == 404
    assert response.json == {"error": "Not Found"}


def test_unknown_page_is_the_html_404_page_unless_json_is_preferred(blog_client):
    page = blog_client.get("/nothing-here")
    json = blog_client.get("/nothing-here", headers={"Accept": "application/json"})

    assert (page.status_code, page.mimetype) == (404, "text/html")
    assert "<h1>Not Found</h1>" in page.get_data(as_text=True)
    assert (json.status_code, json.json) == (404, {"error": "Not Found"})


@pytest.fixture
def failing_app(blog_database_url):
    app = build_app(blog_database_url, PROPAGATE_EXCEPTIONS=False)

    @app.route("/api/boom")
    @app.route("/boom")
    def boom():
        db.session.add(User(username="half", email="half@example.com"))
        db.session.flush()
        raise RuntimeError("boom")

    yield app
    with app.app_context():
        db.engine.dispose()


def test_an_unhandled_error_is_a_500_page_and_keeps_none_of_the_requests_writes(
    blog_app, failing_app
):
    client = failing_app.test_client()

    page = client.get("/boom")
    api = client.get("/api/boom")

    assert page.status_code == 500
    assert "An unexpected error has occurred" in page.get_data(as_text=True)
    assert (api.status_code, api.json) == (500, {"error": "Internal Server Error"})
    assert db.session.scalar(sa.select(User)) is None


@pytest.fixture
def csrf_app(blog_database_url):
    app = build_app(blog_database_url, WTF_CSRF_ENABLED=True)
    yield app
    with app.app_context():
        db.engine.dispose()


def test_with_csrf_on_forms_need_the_token_but_the_api_does_not(blog_app, csrf_app):
    UserFactory(username="susan")
    client = csrf_app.test_client()

    login_without_token = client.post("/auth/login", data={"username": "susan", "password": "cat"})
    api_signup = client.post(
        "/api/users", json={"username": "mary", "email": "mary@example.com", "password": "x"}
    )

    assert login_without_token.status_code == 400
    assert "The CSRF token is missing." in login_without_token.get_data(as_text=True)
    assert api_signup.status_code == 201
    usernames = db.session.scalars(sa.select(User.username).order_by(User.id)).all()
    assert usernames == ["susan", "mary"]
