"""The follow form (an HTML form view) through a command, and what the toolkit learns about
the blog's writers: the many-to-many write seen, ``last_seen`` not a writer of the read
model, the same gate verdict in every process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from cqrs_layer.ops.context import toolkit_of
from cqrs_layer.testing import assert_read_models_exact

from .app.extensions import db
from .conftest import _empty_tables
from .factories import PostFactory, UserFactory
from .harness import build_app
from .helpers import log_in
from .test_follow import follower_rows

SERVED_BY = "X-CQRS-Served-By"
FOLLOW_ON_COMMAND = {"CQRS_ENDPOINT_STAGES": {"main.follow": "command"}}


@pytest.fixture
def blog(blog_database_url: str) -> Iterator[Flask]:
    app = build_app(blog_database_url, **FOLLOW_ON_COMMAND)
    with app.app_context():
        _empty_tables()
        UserFactory.reset_sequence()
        PostFactory.reset_sequence()
        UserFactory.create_batch(2)
        yield app
        assert_read_models_exact(app)
        db.session.remove()
    with app.app_context():
        db.engine.dispose()


def test_a_valid_follow_is_served_by_the_command_with_the_views_flash_and_redirect(blog):
    client = blog.test_client()
    log_in(client, "user0")
    response = client.post("/follow/user1")
    assert response.headers[SERVED_BY] == "command"
    assert response.status_code == 302
    assert response.headers["Location"] == "/user/user1"
    page = client.get("/user/user1").get_data(as_text=True)
    assert "You are following user1!" in page
    assert follower_rows() == [(1, 2)]


@pytest.mark.parametrize(
    ("path", "flashed", "location"),
    [
        ("/follow/user0", "You cannot follow yourself!", "/user/user0"),
        ("/follow/nobody", "User nobody not found.", "/index"),
    ],
)
def test_what_the_command_declines_the_legacy_view_answers(blog, path, flashed, location):
    client = blog.test_client()
    log_in(client, "user0")
    response = client.post(path)
    assert response.headers[SERVED_BY] == "legacy"
    assert (response.status_code, response.headers["Location"]) == (302, location)
    assert flashed in client.get(location).get_data(as_text=True)
    assert follower_rows() == []


def test_not_logged_in_gets_the_login_redirect_on_the_command_path_too(blog):
    response = blog.test_client().post("/follow/user1")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/auth/login")
    assert follower_rows() == []


def test_the_writers_the_toolkit_learns_are_shared_and_per_column(blog, blog_database_url):
    """``main.unfollow`` (legacy) deletes from the many-to-many table inside the ORM's
    flush; a logged-in page view updates ``user.last_seen``, a column no read model reads.
    Another process (a second app on the database, the CLI) knows the first as a writer,
    never the second, and gives the same promotion verdict."""
    client = blog.test_client()
    log_in(client, "user0")
    # Buffered: the guard records what it learned once the response is closed.
    client.post("/follow/user1", buffered=True)
    client.post("/unfollow/user1", buffered=True)
    client.get("/user/user1", buffered=True)  # last_seen only
    toolkit_of(blog).comparisons.drain()

    other_worker = build_app(blog_database_url)
    with other_worker.app_context():
        gate = toolkit_of(other_worker).gate
        writers = gate.writers_of({"followers", "user", "post"})
        verdict = [blocker.to_dict() for blocker in gate.blockers("api.get_users")]
    assert writers["main.unfollow"] == frozenset({"followers"})
    assert "main.user" not in writers
    assert "main.index" not in writers  # GET / bumps last_seen too
    assert verdict == [
        blocker.to_dict() for blocker in toolkit_of(blog).gate.blockers("api.get_users")
    ]
    # Capture keeps user_stats exact whatever writes: the unwrapped writers block nothing.
    assert [blocker["kind"] for blocker in verdict] == ["readiness"]

    result = blog.test_cli_runner().invoke(
        args=["cqrs", "flags", "set", "api.get_users", "live", "--reason", "try"]
    )
    assert result.exit_code != 0
    assert verdict[0]["message"] in result.output
