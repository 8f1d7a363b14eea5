"""Following and unfollowing through the profile page's POST forms.

These endpoints validate by redirecting: a bad request still answers 302, with a flash.
"""

from __future__ import annotations

import sqlalchemy as sa

from .app.extensions import db
from .app.models import followers
from .factories import UserFactory
from .helpers import log_in


def follower_rows() -> list[tuple[int, int]]:
    query = sa.select(followers.c.follower_id, followers.c.followed_id).order_by(
        followers.c.follower_id, followers.c.followed_id
    )
    return [tuple(row) for row in db.session.execute(query)]


def test_follow_inserts_a_followers_row_and_redirects_to_the_profile(blog_client):
    susan, john = UserFactory.create_batch(2)
    log_in(blog_client, susan.username)

    response = blog_client.post(f"/follow/{john.username}", follow_redirects=True)

    assert response.request.path == f"/user/{john.username}"
    assert f"You are following {john.username}!" in response.get_data(as_text=True)
    assert follower_rows() == [(susan.id, john.id)]
    assert susan.is_following(john)
    assert not john.is_following(susan)


def test_following_twice_keeps_a_single_row(blog_client):
    susan, john = UserFactory.create_batch(2)
    log_in(blog_client, susan.username)

    blog_client.post(f"/follow/{john.username}")
    blog_client.post(f"/follow/{john.username}")

    assert follower_rows() == [(susan.id, john.id)]


def test_unfollow_deletes_only_that_followers_row(blog_client):
    susan, john, mary = UserFactory.create_batch(3)
    susan.follow(john)
    susan.follow(mary)
    john.follow(susan)
    db.session.commit()
    log_in(blog_client, susan.username)

    response = blog_client.post(f"/unfollow/{john.username}", follow_redirects=True)

    assert response.request.path == f"/user/{john.username}"
    assert f"You are not following {john.username}." in response.get_data(as_text=True)
    assert follower_rows() == [(susan.id, mary.id), (john.id, susan.id)]


def test_following_yourself_flashes_and_redirects_to_your_profile(blog_client):
    susan = UserFactory(username="susan")
    log_in(blog_client, "susan")

    response = blog_client.post("/follow/susan")
    page = blog_client.get(response.headers["Location"]).get_data(as_text=True)

    assert response.status_code == 302
    assert response.headers["Location"] == "/user/susan"
    assert "You cannot follow yourself!" in page
    assert follower_rows() == []
    assert not susan.is_following(susan)


def test_unfollowing_yourself_flashes_and_redirects_to_your_profile(blog_client):
    UserFactory(username="susan")
    log_in(blog_client, "susan")

    response = blog_client.post("/unfollow/susan", follow_redirects=True)

    assert response.request.path == "/user/susan"
    assert "You cannot unfollow yourself!" in response.get_data(as_text=True)


def test_following_an_unknown_user_flashes_and_redirects_home(blog_client):
    UserFactory(username="susan")
    log_in(blog_client, "susan")

    response = blog_client.post("/follow/nobody")
    page = blog_client.get(response.headers["Location"]).get_data(as_text=True)

    assert response.status_code == 302
    assert response.headers["Location"] == "/index"
    assert "User nobody not found." in page
    assert follower_rows() == []


def test_unfollowing_an_unknown_user_flashes_and_redirects_home(blog_client):
    UserFactory(username="susan")
    log_in(blog_client, "susan")

    response = blog_client.post("/unfollow/nobody", follow_redirects=True)

    assert response.request.path == "/index"
    assert "User nobody not found." in response.get_data(as_text=True)


def test_follow_requires_login(blog_client):
    UserFactory(username="john")

    response = blog_client.post("/follow/john")

    assert response.headers["Location"] == "/auth/login?next=%2Ffollow%2Fjohn"
    assert follower_rows() == []
