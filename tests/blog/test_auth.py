"""Registering, logging in and out through the HTML forms (Flask-WTF + Flask-Login)."""

from __future__ import annotations

import sqlalchemy as sa
from werkzeug.security import check_password_hash

from .app.extensions import db
from .app.models import User
from .factories import UserFactory
from .helpers import log_in


def registration(**overrides: str) -> dict[str, str]:
    form = {
        "username": "susan",
        "email": "susan@example.com",
        "password": "dog",
        "password2": "dog",
    }
    return {**form, **overrides}


def test_register_creates_a_user_with_a_hashed_password_and_sends_them_to_login(blog_client):
    response = blog_client.post("/auth/register", data=registration())

    assert response.status_code == 302
    assert response.headers["Location"] == "/auth/login"
    user = db.session.scalar(sa.select(User))
    assert (user.id, user.username, user.email) == (1, "susan", "susan@example.com")
    assert user.password_hash != "dog"
    assert check_password_hash(user.password_hash, "dog")
    page = blog_client.get("/auth/login").get_data(as_text=True)
    assert "Congratulations, you are now a registered user!" in page


def test_register_rejects_a_taken_username_and_email_and_stores_nothing(blog_client):
    UserFactory(username="susan", email="susan@example.com")

    response = blog_client.post("/auth/register", data=registration())

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Please use a different username." in page
    assert "Please use a different email address." in page
    assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 1


def test_register_rejects_mismatched_passwords_and_a_malformed_email(blog_client):
    response = blog_client.post(
        "/auth/register", data=registration(email="not-an-email", password2="cat")
    )

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Invalid email address." in page
    assert "Field must be equal to password." in page
    assert db.session.scalar(sa.select(User)) is None


def test_pages_behind_login_redirect_anonymous_visitors_to_the_login_form(blog_client):
    response = blog_client.get("/index")

    assert response.status_code == 302
    assert response.headers["Location"] == "/auth/login?next=%2Findex"


def test_login_with_the_right_password_opens_the_home_page(blog_client):
    UserFactory(username="susan")

    log_in(blog_client, "susan")
    page = blog_client.get("/index").get_data(as_text=True)

    assert "Hi, susan!" in page


def test_login_follows_a_local_next_page_but_not_an_external_one(blog_client):
    UserFactory(username="susan")
    credentials = {"username": "susan", "password": "cat"}

    local = blog_client.post("/auth/login?next=/user/susan", data=credentials)
    blog_client.get("/auth/logout")
    external = blog_client.post("/auth/login?next=https://evil.example/", data=credentials)

    assert local.headers["Location"] == "/user/susan"
    assert external.headers["Location"] == "/index"


def test_login_with_a_wrong_password_flashes_and_stays_logged_out(blog_client):
    UserFactory(username="susan")

    response = blog_client.post(
        "/auth/login", data={"username": "susan", "password": "dog"}, follow_redirects=True
    )

    assert response.request.path == "/auth/login"
    assert "Invalid username or password" in response.get_data(as_text=True)
    assert blog_client.get("/index").status_code == 302


def test_logout_ends_the_session(blog_client):
    UserFactory(username="susan")
    log_in(blog_client, "susan")

    response = blog_client.get("/auth/logout")

    assert response.headers["Location"] == "/index"
    assert blog_client.get("/index").headers["Location"] == "/auth/login?next=%2Findex"


def test_logged_in_users_are_sent_home_from_login_and_register(blog_client):
    UserFactory(username="susan")
    log_in(blog_client, "susan")

    assert blog_client.get("/auth/login").headers["Location"] == "/index"
    assert blog_client.get("/auth/register").headers["Location"] == "/index"
