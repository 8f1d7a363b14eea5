"""Placeholder: meta endpoints."""

from flask import Blueprint

bp = Blueprint("meta", __name__, url_prefix="/api")
