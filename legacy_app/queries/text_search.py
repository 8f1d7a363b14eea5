"""Case-insensitive substring search that treats the user's text literally."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, or_

LIKE_ESCAPE = "\\"


def escape_like(text: str) -> str:
    """Escape LIKE wildcards so ``%`` and ``_`` in user input match themselves."""
    return (
        text.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2)
        .replace("%", LIKE_ESCAPE + "%")
        .replace("_", LIKE_ESCAPE + "_")
    )


def contains_text(text: str, *columns: Any) -> ColumnElement[bool]:
    """Any of ``columns`` contains ``text``, ignoring case."""
    pattern = f"%{escape_like(text)}%"
    return or_(*(column.ilike(pattern, escape=LIKE_ESCAPE) for column in columns))
