"""factory-boy factories for the blog's models; they commit, so requests see the rows."""

from __future__ import annotations

from datetime import datetime, timedelta

import factory
from factory.alchemy import SQLAlchemyModelFactory
from werkzeug.security import generate_password_hash

from .app.extensions import db
from .app.models import Post, User

PASSWORD = "cat"
# The app's default (scrypt) takes tens of milliseconds per user; one cheap hash of the
# shared password keeps the suite fast and still goes through check_password_hash().
PASSWORD_HASH = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1")

LAST_SEEN = datetime(2024, 1, 1, 12, 0, 0)
FIRST_POST_AT = datetime(2024, 1, 2, 9, 0, 0)


class BaseFactory(SQLAlchemyModelFactory):
    class Meta:
        abstract = True
        sqlalchemy_session_factory = lambda: db.session  # noqa: E731
        sqlalchemy_session_persistence = "commit"


class UserFactory(BaseFactory):
    class Meta:
        model = User

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    password_hash = PASSWORD_HASH
    last_seen = LAST_SEEN


class PostFactory(BaseFactory):
    class Meta:
        model = Post

    body = factory.Sequence(lambda n: f"post number {n}")
    # A minute apart, so "newest first" has one right answer.
    timestamp = factory.Sequence(lambda n: FIRST_POST_AT + timedelta(minutes=n))
    author = factory.SubFactory(UserFactory)
