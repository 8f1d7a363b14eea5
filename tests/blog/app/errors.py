from flask import Blueprint, render_template, request

from .api.errors import error_response as api_error_response
from .extensions import db

bp = Blueprint("errors", __name__)


def wants_json_response():
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


@bp.app_errorhandler(404)
def not_found_error(error):
    if wants_json_response():
        return api_error_response(404)
    return render_template("errors/404.html"), 404


@bp.app_errorhandler(500)
def internal_error(error):
    # The failed request may have left the session mid-transaction.
    db.session.rollback()
    if wants_json_response():
        return api_error_response(500)
    return render_template("errors/500.html"), 500
