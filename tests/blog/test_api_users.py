"""The users API: microblog's envelope, per-row counts, JSON errors, who may change whom."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from .app.extensions import db
from .app.models import User
from .factories import PostFactory, UserFactory
from .helpers import token_header

AVATARS = {
    "susan": "https://www.gravatar.com/avatar/f3fc30174d7fd74ab6ca3c36d198fcb9?d=identicon&s=128",
    "john": "https://www.gravatar.com/avatar/d4c74594d841139328695756648b6bd6?d=identicon&s=128",
    "mary": "https://www.gravatar.com/avatar/c96da02bba97aedfd26136e980ae3761?d=identicon&s=128",
}


def user_json(id, username, post_count, follower_count, following_count, about_me=None):
    return {
        "id": id,
        "username": username,
        "last_seen": "2024-01-01T12:00:00+00:00",
        "about_me": about_me,
        "post_count": post_count,
        "follower_count": follower_count,
        "following_count": following_count,
        "_links": {
            "self": f"/api/users/{id}",
            "followers": f"/api/users/{id}/followers",
            "following": f"/api/users/{id}/following",
            "avatar": AVATARS[username],
        },
    }


@pytest.fixture
def as_mary(blog_client):
    """Mary's token headers, after: susan follows john and mary, john follows susan; susan
    wrote 2 posts, john 1."""
    susan = UserFactory(username="susan", about_me="hi")
    john = UserFactory(username="john")
    mary = UserFactory(username="mary")
    susan.follow(john)
    susan.follow(mary)
    john.follow(susan)
    db.session.commit()
    PostFactory.create_batch(2, author=susan)
    PostFactory(author=john)
    return token_header(blog_client, "mary")


def test_list_users_is_the_paginated_envelope_with_counts_per_user(blog_client, as_mary):
    response = blog_client.get("/api/users", headers=as_mary)

    assert response.status_code == 200
    assert response.json == {
        "items": [
            user_json(1, "susan", 2, 1, 2, about_me="hi"),
            user_json(2, "john", 1, 1, 1),
            user_json(3, "mary", 0, 1, 0),
        ],
        "_meta": {"page": 1, "per_page": 10, "total_pages": 1, "total_items": 3},
        "_links": {"self": "/api/users?page=1&per_page=10", "next": None, "prev": None},
    }


def test_list_users_pages_with_next_and_prev_links(blog_client, as_mary):
    first = blog_client.get("/api/users?per_page=2", headers=as_mary).json
    second = blog_client.get("/api/users?page=2&per_page=2", headers=as_mary).json

    assert [item["id"] for item in first["items"]] == [1, 2]
    assert first["_meta"] == {"page": 1, "per_page": 2, "total_pages": 2, "total_items": 3}
    assert first["_links"] == {
        "self": "/api/users?page=1&per_page=2",
        "next": "/api/users?page=2&per_page=2",
        "prev": None,
    }
    assert [item["id"] for item in second["items"]] == [3]
    assert second["_links"] == {
        "self": "/api/users?page=2&per_page=2",
        "next": None,
        "prev": "/api/users?page=1&per_page=2",
    }


def test_list_users_caps_per_page_at_100_and_answers_past_the_end_with_no_items(
    blog_client, as_mary
):
    capped = blog_client.get("/api/users?per_page=500", headers=as_mary).json
    beyond = blog_client.get("/api/users?page=5", headers=as_mary).json

    assert capped["_meta"] == {"page": 1, "per_page": 100, "total_pages": 1, "total_items": 3}
    assert beyond["items"] == []
    assert beyond["_links"]["prev"] == "/api/users?page=4&per_page=10"


def test_get_one_user(blog_client, as_mary):
    response = blog_client.get("/api/users/2", headers=as_mary)

    assert response.status_code == 200
    assert response.json == user_json(2, "john", 1, 1, 1)


def test_get_an_unknown_user_is_a_json_404(blog_client, as_mary):
    response = blog_client.get("/api/users/99", headers=as_mary)

    assert response.status_code == 404
    assert response.json == {"error": "Not Found"}


def test_followers_and_following_lists_use_the_same_envelope(blog_client, as_mary):
    followers = blog_client.get("/api/users/1/followers", headers=as_mary).json
    following = blog_client.get("/api/users/1/following?per_page=1", headers=as_mary).json

    assert followers == {
        "items": [user_json(2, "john", 1, 1, 1)],
        "_meta": {"page": 1, "per_page": 10, "total_pages": 1, "total_items": 1},
        "_links": {
            "self": "/api/users/1/followers?page=1&per_page=10",
            "next": None,
            "prev": None,
        },
    }
    assert following == {
        "items": [user_json(2, "john", 1, 1, 1)],
        "_meta": {"page": 1, "per_page": 1, "total_pages": 2, "total_items": 2},
        "_links": {
            "self": "/api/users/1/following?page=1&per_page=1",
            "next": "/api/users/1/following?page=2&per_page=1",
            "prev": None,
        },
    }


def test_followers_of_an_unknown_user_is_a_json_404(blog_client, as_mary):
    response = blog_client.get("/api/users/99/following", headers=as_mary)

    assert (response.status_code, response.json) == (404, {"error": "Not Found"})


def test_create_user_answers_201_with_the_user_and_its_location(blog_client):
    response = blog_client.post(
        "/api/users",
        json={"username": "susan", "email": "susan@example.com", "password": "dog"},
    )

    assert response.status_code == 201
    assert response.headers["Location"] == "/api/users/1"
    assert response.json["id"] == 1
    assert response.json["username"] == "susan"
    assert response.json["post_count"] == 0
    user = db.session.get(User, 1)
    assert user.email == "susan@example.com"
    assert user.check_password("dog")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"username": "new", "email": "new@example.com"},
            "must include username, email and password fields",
        ),
        ({}, "must include username, email and password fields"),
        (
            {"username": "susan", "email": "new@example.com", "password": "x"},
            "please use a different username",
        ),
        (
            {"username": "new", "email": "susan@example.com", "password": "x"},
            "please use a different email address",
        ),
    ],
    ids=["no-password", "empty-body", "taken-username", "taken-email"],
)
def test_create_user_rejects_missing_and_taken_fields_with_a_json_400(blog_client, body, message):
    UserFactory(username="susan", email="susan@example.com")

    response = blog_client.post("/api/users", json=body)

    assert response.status_code == 400
    assert response.json == {"error": "Bad Request", "message": message}
    assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 1


def test_a_user_can_update_themselves(blog_client, as_mary):
    response = blog_client.put(
        "/api/users/3", json={"about_me": "hello", "email": "m@example.com"}, headers=as_mary
    )

    assert response.status_code == 200
    assert response.json["about_me"] == "hello"
    user = db.session.get(User, 3)
    assert (user.about_me, user.email) == ("hello", "m@example.com")


def test_updating_someone_else_is_a_json_403_and_changes_nothing(blog_client, as_mary):
    response = blog_client.put("/api/users/1", json={"about_me": "hacked"}, headers=as_mary)

    assert response.status_code == 403
    assert response.json == {"error": "Forbidden"}
    assert db.session.get(User, 1).about_me == "hi"


def test_updating_to_a_taken_username_is_a_json_400(blog_client, as_mary):
    response = blog_client.put("/api/users/3", json={"username": "john"}, headers=as_mary)

    assert response.status_code == 400
    assert response.json == {"error": "Bad Request", "message": "please use a different username"}
    assert db.session.get(User, 3).username == "mary"
