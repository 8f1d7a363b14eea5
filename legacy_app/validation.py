"""Turning request input (JSON bodies, query strings, path ids) into checked values."""

from __future__ import annotations

from typing import Any, TypeVar

from flask import request
from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import BadRequest, Unprocessable, validation_error_from_pydantic

M = TypeVar("M", bound=BaseModel)

MAX_PER_PAGE = 100


class StrictBody(BaseModel):
    """Base for request bodies: no coercion between types, no unknown fields."""

    model_config = ConfigDict(strict=True, extra="forbid", str_strip_whitespace=True)


def json_body() -> dict[str, Any]:
    if not request.is_json:
        raise BadRequest("request body must be JSON (Content-Type: application/json)", field="body")
    data = request.get_json(silent=True)
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
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise Unprocessable(f"must be an integer, got {raw!r}", field=name) from None
    if not minimum <= value <= maximum:
        raise Unprocessable(f"must be between {minimum} and {maximum}, got {value}", field=name)
    return value


def query_bool(name: str) -> bool | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    lowered = raw.lower()
    if lowered in {"1", "true", "yes"}:
        return True
    if lowered in {"0", "false", "no"}:
        return False
    raise Unprocessable(f"must be true or false, got {raw!r}", field=name)


def query_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = request.args.get(name) or default
    if raw not in choices:
        raise Unprocessable(f"must be one of {', '.join(choices)}, got {raw!r}", field=name)
    return raw


def query_str(name: str, *, max_length: int = 200) -> str | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    raw = raw.strip()
    if "\x00" in raw:
        raise Unprocessable("must not contain NUL characters", field=name)
    if len(raw) > max_length:
        raise Unprocessable(f"must be at most {max_length} characters", field=name)
    return raw or None


def pagination() -> tuple[int, int]:
    page = query_int("page", 1, minimum=1, maximum=1_000_000)
    per_page = query_int("per_page", 20, minimum=1, maximum=MAX_PER_PAGE)
    return page, per_page


def page_envelope(items: list[Any], total: int, page: int, per_page: int) -> dict[str, Any]:
    return {"items": items, "total": total, "page": page, "per_page": per_page}
