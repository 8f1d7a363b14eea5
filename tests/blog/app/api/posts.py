from datetime import UTC, datetime

import sqlalchemy as sa
from flask import abort, request

from ..extensions import db, token_auth
from . import bp
from .errors import bad_request

# Deleting by hand skips loading every post into the session just to delete it.
PURGE_POSTS = sa.text(
    "DELETE FROM post WHERE user_id = :user_id AND timestamp < :before"
).bindparams(sa.bindparam("before", type_=sa.DateTime))


@bp.route("/users/<int:id>/posts/purge", methods=["POST"])
@token_auth.login_required
def purge_posts(id):
    if token_auth.current_user().id != id:
        abort(403)
    data = request.get_json(silent=True) or {}
    try:
        before = datetime.fromisoformat(data["before"])
    except (KeyError, TypeError, ValueError):
        return bad_request("must include before as an ISO 8601 date and time")
    if before.tzinfo is not None:
        before = before.astimezone(UTC).replace(tzinfo=None)
    result = db.session.execute(PURGE_POSTS, {"user_id": id, "before": before})
    db.session.commit()
    return {"deleted": result.rowcount}
