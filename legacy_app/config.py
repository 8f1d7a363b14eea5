"""Configuration read from the environment, with defaults that work on a fresh machine."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .request_limits import DEFAULT_MAX_CONTENT_LENGTH


def default_database_url(instance_path: str) -> str:
    return f"sqlite:///{Path(instance_path) / 'shop.db'}"


def positive_int_from_env(name: str, default: int) -> int:
    """A positive integer setting; a malformed one stops the app from starting."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or int(raw) == 0:
        raise ValueError(f"{name} must be a positive whole number of bytes, got {raw!r}")
    return int(raw)


def config_from_env(instance_path: str) -> dict[str, Any]:
    return {
        "SQLALCHEMY_DATABASE_URI": os.environ.get("DATABASE_URL")
        or default_database_url(instance_path),
        "JSON_SORT_KEYS": False,
        # Request bodies over this many bytes are refused with a 413 (docs/api.md).
        "MAX_CONTENT_LENGTH": positive_int_from_env(
            "MAX_CONTENT_LENGTH", DEFAULT_MAX_CONTENT_LENGTH
        ),
    }
