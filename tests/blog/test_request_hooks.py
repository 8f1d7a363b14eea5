"""The before_request hook that writes users.last_seen on every authenticated request."""

from __future__ import annotations

from .app.extensions import db
from .app.models import User, utcnow
from .factories import LAST_SEEN, UserFactory
from .helpers import log_in, token_header


def test_every_authenticated_request_commits_a_new_last_seen(blog_client):
    UserFactory(username="susan")
    log_in(blog_client, "susan")
    # Logging in is not an authenticated request yet: the hook ran before login_user().
    assert db.session.get(User, 1).last_seen == LAST_SEEN

    before = utcnow()
    blog_client.get("/user/susan")
    after_first = db.session.get(User, 1).last_seen
    blog_client.get("/user/susan")
    after_second = db.session.get(User, 1).last_seen

    assert before <= after_first <= utcnow()
    assert after_first < after_second


def test_the_hook_writes_even_when_the_view_answers_404(blog_client):
    UserFactory(username="susan")
    log_in(blog_client, "susan")

    response = blog_client.get("/user/nobody")

    assert response.status_code == 404
    assert db.session.get(User, 1).last_seen > LAST_SEEN


def test_anonymous_and_token_authenticated_requests_write_nothing(blog_client):
    UserFactory(username="susan")
    headers = token_header(blog_client, "susan")

    blog_client.get("/auth/login")
    blog_client.get("/api/users/1", headers=headers)

    assert db.session.get(User, 1).last_seen == LAST_SEEN
