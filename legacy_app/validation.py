"""Turning request input (JSON bodies, query strings, path ids) into checked values.

Exactly what /openapi.json describes, no looser: an empty query value is not a value of
any type but text, booleans are ``true``/``false``, and a whole number may carry a zero
fraction (``5.0``) because JSON has one number type and JSON Schema calls 5.0 an integer.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

from flask import request
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from .errors import BadRequest, Unprocessable, validation_error_from_pydantic
from .fields import WHITESPACE

M = TypeVar("M", bound=BaseModel)

MAX_PER_PAGE = 100
MAX_PAGE = 1_000_000

#: An integer in a query string: ASCII digits, optionally negative, optionally with a zero
#: fraction. No "+", spaces, "_", exponents or other scripts' digits (all of which int()
#: would take), so the server accepts exactly the integers the document allows.
QUERY_INTEGER = re.compile(r"-?[0-9]+(?:\.0+)?")
BOOLEANS = {"true": True, "false": False}


def whole_number_as_int(value: Any) -> Any:
    """5.0 -> 5: the same JSON number. Any other value (5.5, "5", true) is left alone for
    strict validation to refuse."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class StrictBody(BaseModel):
    """Base for request bodies: no coercion between types, no unknown fields."""

    model_config = ConfigDict(strict=True, extra="forbid", str_strip_whitespace=True)

    @model_validator(mode="before")
    @classmethod
    def _whole_numbers_are_integers(cls, data: Any) -> Any:
        # No body has a float field, so every whole float is meant as an integer. Nested
        # bodies (order lines) are StrictBody too and convert their own fields.
        if isinstance(data, dict):
            return {name: whole_number_as_int(value) for name, value in data.items()}
        return data


def json_body() -> dict[str, Any]:
    if not request.is_json:
        raise BadRequest("request body must be JSON (Content-Type: application/json)", field="body")
    try:
        data = request.get_json(silent=True)
    except RecursionError:
        # json.loads recurses once per nesting level; no body of this API nests past 3.
        raise BadRequest("request body is nested too deeply to parse", field="body") from None
    if data is None:
        raise BadRequest("request body is not valid JSON", field="body")
    if not isinstance(data, dict):
        raise Unprocessable("request body must be a JSON object", field="body")
    return data


def parse_body(model: type[M]) -> M:
    data = json_body()
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error_from_pydantic(exc) from None


def query_int(name: str, default: int, *, minimum: int, maximum: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not QUERY_INTEGER.fullmatch(raw):
        raise Unprocessable(f"must be an integer, got {raw!r}", field=name)
    try:
        value = int(raw.partition(".")[0])
    except ValueError:  # more digits than int() parses (4300): far out of range anyway
        raise Unprocessable(f"must be between {minimum} and {maximum}", field=name) from None
    if not minimum <= value <= maximum:
        raise Unprocessable(f"must be between {minimum} and {maximum}, got {value}", field=name)
    return value


def query_bool(name: str) -> bool | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    if raw not in BOOLEANS:
        raise Unprocessable(f"must be true or false, got {raw!r}", field=name)
    return BOOLEANS[raw]


def query_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = request.args.get(name, default)
    if raw not in choices:
        raise Unprocessable(f"must be one of {', '.join(choices)}, got {raw!r}", field=name)
    return raw


def query_str(name: str, *, max_length: int = 200) -> str | None:
    """Free text: stripped like body text; empty (or blank) means no value."""
    raw = request.args.get(name)
    if raw is None:
        return None
    raw = raw.strip(WHITESPACE)
    if "\x00" in raw:
        raise Unprocessable("must not contain NUL characters", field=name)
    if len(raw) > max_length:
        raise Unprocessable(f"must be at most {max_length} characters", field=name)
    return raw or None


def pagination() -> tuple[int, int]:
    page = query_int("page", 1, minimum=1, maximum=MAX_PAGE)
    per_page = query_int("per_page", 20, minimum=1, maximum=MAX_PER_PAGE)
    return page, per_page


def page_envelope(items: list[Any], total: int, page: int, per_page: int) -> dict[str, Any]:
    return {"items": items, "total": total, "page": page, "per_page": per_page}
