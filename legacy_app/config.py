"""Configuration read from the environment, with defaults that work on a fresh machine."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def default_database_url(instance_path: str) -> str:
    return f"sqlite:///{Path(instance_path) / 'shop.db'}"


def config_from_env(instance_path: str) -> dict[str, Any]:
    return {
        "SQLALCHEMY_DATABASE_URI": os.environ.get("DATABASE_URL")
        or default_database_url(instance_path),
        "JSON_SORT_KEYS": False,
    }
