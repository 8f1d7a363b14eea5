"""Placeholder: reports endpoints."""

from flask import Blueprint

bp = Blueprint("reports", __name__, url_prefix="/api")
