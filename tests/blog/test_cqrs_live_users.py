"""GET /api/users live from the user_stats read model, whatever writes the blog's tables.

Every writer the blog has (HTML forms, the JSON API, a many-to-many flush, a delete-orphan
cascade, raw SQL, a CLI bulk insert, a ``before_request`` hook, another process with the
database driver) is followed by a live read. The toolkit's test harness makes each live
read wait for its comparison with legacy, run in one snapshot, and fails the request
(500) unless it matched: "equal to what legacy answers at the same moment" is checked on
every read, not only the counts each test asserts.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import make_url

from cqrs_layer.ops.context import toolkit_of
from cqrs_layer.testing import assert_read_models_exact, install, stage_settings

from .app.extensions import db
from .conftest import _empty_tables
from .factories import PostFactory, UserFactory
from .harness import build_app
from .helpers import log_in, token_header

SERVED_BY = "X-CQRS-Served-By"
LIVE = stage_settings("live")


@pytest.fixture
def live_app(blog_database_url: str) -> Iterator[Flask]:
    """The blog with /api/users live, every read compared and any difference a 500."""
    yield from _app(blog_database_url, checked=True)


@pytest.fixture
def live_app_unchecked(blog_database_url: str) -> Iterator[Flask]:
    """The same without the harness: a legacy answer (a stale read model) is allowed."""
    yield from _app(blog_database_url, checked=False)


def _app(url: str, *, checked: bool) -> Iterator[Flask]:
    app = build_app(url, **LIVE)
    if checked:
        install(app)
    with app.app_context():
        _empty_tables()
        UserFactory.reset_sequence()
        PostFactory.reset_sequence()
        yield app
        assert_read_models_exact(app)
        db.session.remove()
    with app.app_context():
        db.engine.dispose()


def counts(client: FlaskClient, headers: dict[str, str], *, served_by: str = "read-model"):
    """username -> (posts, followers, following), as GET /api/users answers live."""
    response = client.get("/api/users?per_page=100", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers[SERVED_BY] == served_by
    return {
        user["username"]: (user["post_count"], user["follower_count"], user["following_count"])
        for user in response.json["items"]
    }


@pytest.fixture
def people(live_app: Flask):
    susan, john = UserFactory.create_batch(2)
    PostFactory.create_batch(2, author=susan)
    return susan, john


def test_factories_writing_through_the_orm_are_seen_live(live_app, people):
    client = live_app.test_client()
    assert counts(client, token_header(client, "user0")) == {"user0": (2, 0, 0), "user1": (0, 0, 0)}


def test_a_post_through_the_html_form(live_app, people):
    client = live_app.test_client()
    log_in(client, "user0")  # every page view also bumps last_seen (a before_request hook)
    assert client.post("/index", data={"post": "hello"}).status_code == 302
    assert counts(client, token_header(client, "user1"))["user0"] == (3, 0, 0)


def test_follow_and_unfollow_through_the_forms_many_to_many(live_app, people):
    client = live_app.test_client()
    log_in(client, "user0")
    client.post("/follow/user1")
    headers = token_header(client, "user1")
    seen = counts(client, headers)
    assert (seen["user0"], seen["user1"]) == ((2, 0, 1), (0, 1, 0))
    client.post("/unfollow/user1")
    assert counts(client, headers)["user1"] == (0, 0, 0)


def test_sign_up_form_and_api_create_user(live_app, people):
    client = live_app.test_client()
    form = {"username": "ann", "email": "ann@example.com", "password": "x", "password2": "x"}
    assert client.post("/auth/register", data=form).status_code == 302
    body = {"username": "bob", "email": "bob@example.com", "password": "x"}
    assert client.post("/api/users", json=body).status_code == 201
    seen = counts(client, token_header(client, "user0"))
    assert seen["ann"] == seen["bob"] == (0, 0, 0)


def test_delete_post_form_cascade_and_purge_by_raw_sql(live_app, people):
    client = live_app.test_client()
    susan, _ = people
    log_in(client, "user0")
    assert client.post(f"/post/{susan.posts[0].id}/delete").status_code == 302
    headers = token_header(client, "user0")
    assert counts(client, headers)["user0"] == (1, 0, 0)
    purge = client.post("/api/users/1/posts/purge", json={"before": "2100-01-01T00:00:00"})
    assert purge.status_code == 401  # the token is needed; then the DELETE is raw SQL
    purge = client.post(
        "/api/users/1/posts/purge", json={"before": "2100-01-01T00:00:00"}, headers=headers
    )
    assert purge.json == {"deleted": 1}
    assert counts(client, headers)["user0"] == (0, 0, 0)


def test_cli_bulk_import(live_app, people, tmp_path):
    export = tmp_path / "posts.csv"
    export.write_text("username,body\nuser1,one\nuser1,two\nuser1,three\n")
    result = live_app.test_cli_runner().invoke(args=["blog", "import-posts", str(export)])
    assert "Imported 3 posts" in result.output
    client = live_app.test_client()
    assert counts(client, token_header(client, "user0"))["user1"] == (3, 0, 0)


def test_a_404_of_the_read_path_is_an_answer_compared_with_legacy(live_app, people):
    client = live_app.test_client()
    headers = token_header(client, "user0")
    response = client.get("/api/users/999", headers=headers)
    assert response.status_code == 404
    assert response.headers[SERVED_BY] == "read-model"
    assert response.json == {"error": "Not Found"}  # the blog's own error body
    assert client.get("/api/users/2", headers=headers).json["post_count"] == 0


def test_another_process_writing_with_the_driver(live_app_unchecked, people):
    """A write the app never sees: the live endpoint answers from legacy (right) until
    ``flask cqrs refresh`` applies the change, then from the read model again."""
    app = live_app_unchecked
    client = app.test_client()
    headers = token_header(client, "user0")
    insert_post_from_another_process(app, user_id=2)

    assert counts(client, headers, served_by="legacy")["user1"] == (1, 0, 0)
    result = app.test_cli_runner().invoke(args=["cqrs", "refresh"])
    assert result.exit_code == 0, result.output
    # The stale read asked the app to catch up in the background: it may have already.
    toolkit_of(app).comparisons.drain()
    assert counts(client, headers)["user1"] == (1, 0, 0)


def insert_post_from_another_process(app: Flask, *, user_id: int) -> None:
    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    at = datetime(2024, 5, 1).isoformat(sep=" ")
    if url.get_backend_name() == "sqlite":
        code = (
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
            "c.execute('INSERT INTO post (body, timestamp, user_id) VALUES (?, ?, ?)',"
            " ('from psql', sys.argv[2], int(sys.argv[3]))); c.commit()"
        )
        target = url.database
    else:
        code = (
            "import psycopg, sys; c = psycopg.connect(sys.argv[1]); "
            "c.execute('INSERT INTO post (body, timestamp, user_id) VALUES (%s, %s, %s)',"
            " ('from psql', sys.argv[2], int(sys.argv[3]))); c.commit()"
        )
        target = url.set(drivername="postgresql").render_as_string(hide_password=False)
    subprocess.run([sys.executable, "-c", code, target, at, str(user_id)], check=True)
