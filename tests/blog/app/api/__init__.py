from flask import Blueprint

bp = Blueprint("api", __name__)

from . import auth, errors, posts, tokens, users  # noqa: E402, F401
