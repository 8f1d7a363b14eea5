"""POST /api/users/<id>/posts/purge: a raw-SQL DELETE behind token auth."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from .app.extensions import db
from .app.models import Post
from .factories import PostFactory, UserFactory
from .helpers import token_header


def remaining_posts() -> list[tuple[int, str]]:
    return [
        tuple(row) for row in db.session.execute(sa.select(Post.id, Post.body).order_by(Post.id))
    ]


def test_purge_deletes_only_the_users_posts_older_than_before(blog_client):
    susan, john = UserFactory(username="susan"), UserFactory(username="john")
    PostFactory(author=susan, body="old", timestamp=datetime(2024, 1, 1))
    PostFactory(author=susan, body="new", timestamp=datetime(2024, 3, 1))
    PostFactory(author=john, body="johns old", timestamp=datetime(2024, 1, 1))
    headers = token_header(blog_client, "susan")

    response = blog_client.post(
        f"/api/users/{susan.id}/posts/purge",
        json={"before": "2024-02-01T00:00:00"},
        headers=headers,
    )

    assert response.status_code == 200
    assert response.json == {"deleted": 1}
    assert remaining_posts() == [(2, "new"), (3, "johns old")]


def test_purge_reads_an_offset_as_utc(blog_client):
    susan = UserFactory(username="susan")
    PostFactory(author=susan, body="10:30 utc", timestamp=datetime(2024, 1, 1, 10, 30))
    PostFactory(author=susan, body="11:30 utc", timestamp=datetime(2024, 1, 1, 11, 30))
    headers = token_header(blog_client, "susan")

    response = blog_client.post(
        "/api/users/1/posts/purge", json={"before": "2024-01-01T12:00:00+01:00"}, headers=headers
    )

    assert response.json == {"deleted": 1}
    assert remaining_posts() == [(2, "11:30 utc")]


def test_purging_someone_elses_posts_is_a_json_403(blog_client):
    UserFactory(username="susan")
    PostFactory(author=UserFactory(username="john"), timestamp=datetime(2024, 1, 1))
    headers = token_header(blog_client, "susan")

    response = blog_client.post(
        "/api/users/2/posts/purge", json={"before": "2025-01-01T00:00:00"}, headers=headers
    )

    assert (response.status_code, response.json) == (403, {"error": "Forbidden"})
    assert len(remaining_posts()) == 1


def test_purge_without_a_valid_before_is_a_json_400(blog_client):
    PostFactory(author=UserFactory(username="susan"), timestamp=datetime(2024, 1, 1))
    headers = token_header(blog_client, "susan")

    missing = blog_client.post("/api/users/1/posts/purge", json={}, headers=headers)
    garbled = blog_client.post(
        "/api/users/1/posts/purge", json={"before": "last week"}, headers=headers
    )

    message = "must include before as an ISO 8601 date and time"
    assert (missing.status_code, missing.json) == (
        400,
        {"error": "Bad Request", "message": message},
    )
    assert (garbled.status_code, garbled.json) == (
        400,
        {"error": "Bad Request", "message": message},
    )
    assert len(remaining_posts()) == 1
