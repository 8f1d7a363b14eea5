"""Getting and revoking API tokens: HTTP Basic for POST /api/tokens, Bearer tokens after."""

from __future__ import annotations

from datetime import timedelta

from .app.extensions import db
from .app.models import User, utcnow
from .factories import UserFactory
from .helpers import basic_auth_header, token_header


def test_basic_auth_returns_a_token_stored_on_the_user_for_an_hour(blog_client):
    UserFactory(username="susan")

    before = utcnow()
    response = blog_client.post("/api/tokens", headers=basic_auth_header("susan"))

    assert response.status_code == 200
    token = response.json["token"]
    user = db.session.get(User, 1)
    assert user.token == token
    assert len(token) == 32
    assert before + timedelta(hours=1) <= user.token_expiration <= utcnow() + timedelta(hours=1)


def test_asking_again_returns_the_same_unexpired_token(blog_client):
    UserFactory(username="susan")

    first = blog_client.post("/api/tokens", headers=basic_auth_header("susan")).json
    second = blog_client.post("/api/tokens", headers=basic_auth_header("susan")).json

    assert first == second


def test_a_wrong_password_is_a_json_401(blog_client):
    UserFactory(username="susan")

    response = blog_client.post("/api/tokens", headers=basic_auth_header("susan", "dog"))

    assert response.status_code == 401
    assert response.json == {"error": "Unauthorized"}
    assert db.session.get(User, 1).token is None


def test_requests_without_a_valid_token_are_a_json_401(blog_client):
    UserFactory(username="susan")

    missing = blog_client.get("/api/users")
    wrong = blog_client.get("/api/users", headers={"Authorization": "Bearer nope"})

    assert (missing.status_code, missing.json) == (401, {"error": "Unauthorized"})
    assert (wrong.status_code, wrong.json) == (401, {"error": "Unauthorized"})


def test_an_expired_token_is_refused(blog_client):
    UserFactory(username="susan", token="a" * 32, token_expiration=utcnow() - timedelta(1))

    response = blog_client.get("/api/users", headers={"Authorization": "Bearer " + "a" * 32})

    assert response.status_code == 401


def test_revoking_a_token_expires_it_at_once(blog_client):
    UserFactory(username="susan")
    headers = token_header(blog_client, "susan")

    revoked = blog_client.delete("/api/tokens", headers=headers)

    assert revoked.status_code == 204
    assert db.session.get(User, 1).token_expiration < utcnow()
    assert blog_client.get("/api/users", headers=headers).status_code == 401
