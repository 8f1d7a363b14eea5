"""Placeholder: customers endpoints."""

from flask import Blueprint

bp = Blueprint("customers", __name__, url_prefix="/api")
