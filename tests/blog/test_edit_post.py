"""Editing a post: the view saves first and checks the edit window afterwards.

So a late edit answers 403 *and* stays committed: the abort comes after db.session.commit().
"""

from __future__ import annotations

from datetime import timedelta

from .app.extensions import db
from .app.models import Post, utcnow
from .factories import PostFactory, UserFactory
from .helpers import log_in


def test_editing_a_recent_post_saves_it_and_redirects(blog_client):
    post = PostFactory(author=UserFactory(username="susan"), timestamp=utcnow(), body="typo")
    log_in(blog_client, "susan")

    response = blog_client.post(f"/post/{post.id}/edit", data={"post": "fixed"})

    assert response.status_code == 302
    assert response.headers["Location"] == "/user/susan"
    assert db.session.get(Post, post.id).body == "fixed"


def test_editing_a_post_past_the_window_is_forbidden_yet_the_new_body_is_committed(
    blog_client,
):
    old = utcnow() - timedelta(days=2)
    post = PostFactory(author=UserFactory(username="susan"), timestamp=old, body="original")
    log_in(blog_client, "susan")

    response = blog_client.post(f"/post/{post.id}/edit", data={"post": "rewritten"})

    assert response.status_code == 403
    # What stays committed: the new body. The timestamp is untouched.
    stored = db.session.get(Post, post.id)
    assert (stored.body, stored.timestamp) == ("rewritten", old)


def test_editing_someone_elses_post_is_forbidden_before_anything_is_saved(blog_client):
    UserFactory(username="susan")
    post = PostFactory(author=UserFactory(username="john"), timestamp=utcnow(), body="john's")
    log_in(blog_client, "susan")

    response = blog_client.post(f"/post/{post.id}/edit", data={"post": "hijacked"})

    assert response.status_code == 403
    assert db.session.get(Post, post.id).body == "john's"


def test_editing_a_missing_post_is_the_html_404_page(blog_client):
    UserFactory(username="susan")
    log_in(blog_client, "susan")

    response = blog_client.post("/post/99/edit", data={"post": "anything"})

    assert response.status_code == 404
    assert "<h1>Not Found</h1>" in response.get_data(as_text=True)


def test_an_empty_edit_changes_nothing_and_redirects_to_the_profile(blog_client):
    post = PostFactory(author=UserFactory(username="susan"), timestamp=utcnow(), body="keep")
    log_in(blog_client, "susan")

    response = blog_client.post(f"/post/{post.id}/edit", data={"post": ""})

    assert response.headers["Location"] == "/user/susan"
    assert db.session.get(Post, post.id).body == "keep"
