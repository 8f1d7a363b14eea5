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
        # Which path serves the wrapped endpoints when no flag says otherwise (writes:
        # legacy | command; reads: legacy | shadow | live | complete, where the older
        # "read-model" means complete) and what the write guard does with writes that
        # bypass the commands (off | warn | strict), so a server can start in any mode.
        "CQRS_DEFAULT_WRITE_MODE": os.environ.get("CQRS_DEFAULT_WRITE_MODE", "legacy"),
        "CQRS_DEFAULT_READ_MODE": os.environ.get("CQRS_DEFAULT_READ_MODE", "legacy"),
        "CQRS_WRITE_GUARD": os.environ.get("CQRS_WRITE_GUARD", "warn"),
        # The bearer token of the flag admin API under /cqrs/api/; unset keeps the API off.
        # From the environment, never the command line, so it does not show in `ps`.
        "CQRS_ADMIN_TOKEN": os.environ.get("CQRS_ADMIN_TOKEN") or None,
    }
