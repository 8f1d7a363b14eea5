"""The model methods the views lean on: follow bookkeeping, counts, the feed, tokens."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from .app.extensions import db
from .app.models import Post, User, utcnow
from .factories import PostFactory, UserFactory


def test_follow_and_unfollow_write_the_association_at_flush(blog_app):
    susan, john = UserFactory.create_batch(2)

    susan.follow(john)
    db.session.commit()
    following = (susan.is_following(john), susan.following_count(), john.followers_count())
    susan.unfollow(john)
    db.session.commit()

    assert following == (True, 1, 1)
    assert (susan.is_following(john), susan.following_count(), john.followers_count()) == (
        False,
        0,
        0,
    )


def test_posts_count_counts_only_the_users_posts(blog_app):
    susan, john = UserFactory.create_batch(2)
    PostFactory.create_batch(3, author=susan)
    PostFactory(author=john)

    assert (susan.posts_count(), john.posts_count()) == (3, 1)


def test_removing_a_post_from_the_collection_deletes_it(blog_app):
    susan = UserFactory()
    first, second = PostFactory.create_batch(2, author=susan)

    susan.posts.remove(first)
    db.session.commit()

    assert db.session.scalars(sa.select(Post.id)).all() == [second.id]


def test_following_posts_is_own_and_followed_newest_first(blog_app):
    susan, john, mary = UserFactory.create_batch(3)
    susan.follow(john)
    db.session.commit()
    posts = [PostFactory(author=author) for author in (john, mary, susan, john)]

    feed = db.session.scalars(susan.following_posts()).all()

    assert feed == [posts[3], posts[2], posts[0]]


def test_check_token_accepts_a_live_token_only(blog_app):
    live = UserFactory(token="l" * 32, token_expiration=utcnow() + timedelta(minutes=5))
    UserFactory(token="d" * 32, token_expiration=utcnow() - timedelta(minutes=5))

    assert User.check_token("l" * 32) is live
    assert User.check_token("d" * 32) is None
    assert User.check_token("x" * 32) is None
