"""Writing posts through the home page form, the followed-posts feed, profiles, deleting."""

from __future__ import annotations

import re

import sqlalchemy as sa

from .app.extensions import db
from .app.models import Post, User
from .factories import PostFactory, UserFactory
from .helpers import log_in


def post_bodies(page: str) -> list[str]:
    return re.findall(r'<span class="body">(.*?)</span>', page)


def test_posting_through_the_form_stores_the_post_and_redirects_home(blog_client):
    susan = UserFactory(username="susan")
    log_in(blog_client, "susan")

    response = blog_client.post("/index", data={"post": "hello world"})

    assert response.status_code == 302
    assert response.headers["Location"] == "/index"
    post = db.session.scalar(sa.select(Post))
    assert (post.id, post.body, post.user_id) == (1, "hello world", susan.id)
    page = blog_client.get("/index").get_data(as_text=True)
    assert "Your post is now live!" in page
    assert post_bodies(page) == ["hello world"]


def test_an_empty_post_is_rejected_by_the_form_and_not_stored(blog_client):
    UserFactory(username="susan")
    log_in(blog_client, "susan")

    response = blog_client.post("/index", data={"post": ""})

    assert response.status_code == 200
    assert "This field is required." in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(Post)) is None


def test_home_shows_own_and_followed_posts_newest_first_but_not_strangers(blog_client):
    susan, john, stranger = UserFactory.create_batch(3)
    susan.follow(john)
    db.session.commit()
    PostFactory(author=susan, body="susan first")
    PostFactory(author=john, body="john says")
    PostFactory(author=stranger, body="stranger says")
    PostFactory(author=susan, body="susan again")
    log_in(blog_client, susan.username)

    page = blog_client.get("/index").get_data(as_text=True)

    assert post_bodies(page) == ["susan again", "john says", "susan first"]


def test_home_pages_through_the_feed(blog_app, blog_client, monkeypatch):
    monkeypatch.setitem(blog_app.config, "POSTS_PER_PAGE", 2)
    susan = UserFactory(username="susan")
    PostFactory.create_batch(3, author=susan)
    log_in(blog_client, "susan")

    first = blog_client.get("/index").get_data(as_text=True)
    second = blog_client.get("/index?page=2").get_data(as_text=True)

    assert post_bodies(first) == ["post number 2", "post number 1"]
    assert 'href="/index?page=2">Older posts' in first
    assert post_bodies(second) == ["post number 0"]
    assert 'href="/index?page=1">Newer posts' in second


def test_profile_page_shows_the_users_posts_and_counts(blog_client):
    susan, john = UserFactory.create_batch(2)
    john.follow(susan)
    db.session.commit()
    PostFactory(author=susan, body="mine")
    PostFactory(author=john, body="not mine")
    log_in(blog_client, john.username)

    response = blog_client.get(f"/user/{susan.username}")

    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f"<h1>User: {susan.username}</h1>" in page
    assert "1 followers, 0 following." in page
    assert post_bodies(page) == ["mine"]
    assert 'value="Unfollow"' in page


def test_profile_of_an_unknown_user_is_the_html_404_page(blog_client):
    UserFactory(username="susan")
    log_in(blog_client, "susan")

    response = blog_client.get("/user/nobody")

    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert "<h1>Not Found</h1>" in response.get_data(as_text=True)


def test_edit_profile_prefills_the_form_and_saves_changes(blog_client):
    UserFactory(username="susan", about_me="old me")
    log_in(blog_client, "susan")

    form = blog_client.get("/edit_profile").get_data(as_text=True)
    response = blog_client.post("/edit_profile", data={"username": "susan2", "about_me": "new me"})

    assert 'value="susan"' in form
    assert "old me</textarea>" in form
    assert response.headers["Location"] == "/edit_profile"
    user = db.session.get(User, 1)
    assert (user.username, user.about_me) == ("susan2", "new me")


def test_edit_profile_refuses_another_users_name(blog_client):
    UserFactory(username="susan")
    UserFactory(username="john")
    log_in(blog_client, "susan")

    response = blog_client.post("/edit_profile", data={"username": "john", "about_me": ""})

    assert response.status_code == 200
    assert "Please use a different username." in response.get_data(as_text=True)
    assert db.session.get(User, 1).username == "susan"


def test_deleting_an_own_post_removes_it_through_the_orphan_cascade(blog_client):
    susan = UserFactory(username="susan")
    kept, doomed = PostFactory.create_batch(2, author=susan)
    log_in(blog_client, "susan")

    response = blog_client.post(f"/post/{doomed.id}/delete")

    assert response.headers["Location"] == "/user/susan"
    assert db.session.scalars(sa.select(Post.id)).all() == [kept.id]


def test_deleting_someone_elses_post_is_forbidden_and_keeps_it(blog_client):
    UserFactory(username="susan")
    johns = PostFactory(author=UserFactory(username="john"))
    log_in(blog_client, "susan")

    response = blog_client.post(f"/post/{johns.id}/delete")

    assert response.status_code == 403
    assert db.session.scalars(sa.select(Post.id)).all() == [johns.id]
