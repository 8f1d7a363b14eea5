"""The blog's CQRS side: GET /api/users and /api/users/<id> served from a read model, and
the follow form (POST /follow/<username>) through a command.

Nothing here edits a view or a model: endpoints are wrapped by name, the read path reuses
the app's own serializer (``User.to_dict``) with its three counts taken from the read model
instead of three COUNT queries per user, and the command reuses the model's ``follow``.
"""

import sqlalchemy as sa
from flask import flash, redirect, url_for
from flask_login import current_user, login_required

from cqrs_layer import CQRS, Command, Decline, Query, ReadModel

from .extensions import db, token_auth
from .main.forms import EmptyForm
from .models import Post, User, followers

user_stats = sa.Table(
    "user_stats",
    db.metadata,
    sa.Column("user_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("post_count", sa.Integer, nullable=False),
    sa.Column("follower_count", sa.Integer, nullable=False),
    sa.Column("following_count", sa.Integer, nullable=False),
)


def _counted(column):
    return (
        sa.select(column.label("user_id"), sa.func.count().label("n")).group_by(column).subquery()
    )


def user_stats_source():
    posts = _counted(Post.user_id)
    fans = _counted(followers.c.followed_id)
    idols = _counted(followers.c.follower_id)
    return (
        sa.select(
            User.id.label("user_id"),
            sa.func.coalesce(posts.c.n, 0).label("post_count"),
            sa.func.coalesce(fans.c.n, 0).label("follower_count"),
            sa.func.coalesce(idols.c.n, 0).label("following_count"),
        )
        .outerjoin(posts, posts.c.user_id == User.id)
        .outerjoin(fans, fans.c.user_id == User.id)
        .outerjoin(idols, idols.c.user_id == User.id)
    )


stats_model = ReadModel(
    "user_stats",
    user_stats,
    user_stats_source,
    keys_from={followers: [followers.c.follower_id, followers.c.followed_id]},
)


class GetUsers(Query):
    page: int
    per_page: int
    user_id: int | None = None


def with_stats(users):
    """Give each user its counts from the read model: ``to_dict`` then asks no COUNT."""
    ids = [user.id for user in users]
    rows = db.session.execute(sa.select(user_stats).where(user_stats.c.user_id.in_(ids)))
    for row in rows:
        user = db.session.get(User, row.user_id)
        user.posts_count = lambda n=row.post_count: n
        user.followers_count = lambda n=row.follower_count: n
        user.following_count = lambda n=row.following_count: n
    return users


def get_users(query, _connection):
    # The live path reads in one snapshot (db.session included): this page, and the pages
    # to_collection_dict loads again from the session's identity map, are the same objects.
    if query.user_id is not None:
        return with_stats([db.get_or_404(User, query.user_id)])[0].to_dict()
    page = sa.select(User).order_by(User.id)
    first = (max(query.page, 1) - 1) * query.per_page
    # Held in a local until the serializer ran: the identity map holds objects weakly.
    loaded = with_stats(db.session.scalars(page.offset(first).limit(query.per_page)).all())  # noqa: F841
    return User.to_collection_dict(page, query.page, query.per_page, "api.get_users")


def _users_query(request, view_args):
    per_page = min(request.args.get("per_page", 10, type=int), 100)
    page = request.args.get("page", 1, type=int)
    return GetUsers(page=page, per_page=per_page, user_id=view_args.get("id"))


class FollowUser(Command):
    follower_id: int
    username: str


def follow_user(command, uow):
    follower = uow.session.get(User, command.follower_id)
    follower.follow(db.session.scalar(sa.select(User).filter_by(username=command.username)))
    return command.username


def _follow_command(request, view_args):
    user = db.session.scalar(sa.select(User).filter_by(username=view_args["username"]))
    if not EmptyForm().validate_on_submit() or user is None or user == current_user:
        raise Decline("not a valid follow")  # the view's own redirects and flashes answer
    return FollowUser(follower_id=current_user.id, username=user.username)


def _followed(username, _view_args):
    flash(f"You are following {username}!")
    return redirect(url_for("main.user", username=username))


def init_cqrs(app):
    cqrs = CQRS(app, db)  # after the blueprints: endpoints are wrapped by name
    cqrs.register_read_model(stats_model)
    cqrs.register_query(GetUsers, get_users)
    for endpoint in ("api.get_users", "api.get_user"):
        cqrs.query_endpoint(
            endpoint,
            build=_users_query,
            decorators=[token_auth.login_required],
            read_models=["user_stats"],
        )
    cqrs.register_command(FollowUser, follow_user)
    cqrs.command_endpoint(
        "main.follow",
        build=_follow_command,
        respond=_followed,
        decorators=[login_required],
        writes=["followers"],
    )
    return cqrs
