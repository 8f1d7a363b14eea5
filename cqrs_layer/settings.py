"""The toolkit's settings, and reading them from environment variables.

Every ``CQRS_*`` key has a default (:func:`defaults`); ``app.config`` overrides it.
:func:`settings_from_env` lets an app take any of them from the environment, typed by
its default (``CQRS_DEFAULT_SAMPLE_RATE=0.1`` is a float, ``CQRS_ENDPOINT_MODES`` a JSON
object), so an operator can tune a deployment without a code change. A malformed value
is refused with its variable named: a server must not start with a setting it misread.
"""

from __future__ import annotations

import difflib
import json
import logging
from collections.abc import Mapping
from typing import Any

from . import comparisons, ext

log = logging.getLogger(__name__)

PREFIX = "CQRS_"
#: Settings that hold text whatever they look like (a token of digits stays a string).
TEXT_SETTINGS = frozenset({"CQRS_ADMIN_TOKEN", "CQRS_SUBJECT_HEADER"})
#: Settings that take Python objects, which an environment variable cannot hold.
CODE_ONLY_SETTINGS = frozenset({"CQRS_ERROR_RENDERER", "CQRS_SUBJECT_KEY"})


def defaults() -> dict[str, Any]:
    """Every setting the toolkit reads, with its default."""
    return {**ext.DEFAULT_CONFIG, **comparisons.DEFAULTS}


def settings_from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """The ``CQRS_*`` settings found in ``environ``, converted to their defaults' types.

    An unknown ``CQRS_*`` name is logged (a typo would otherwise be silently ignored);
    a value that does not convert raises :class:`ValueError` naming the variable.
    """
    known = defaults()
    settings: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(PREFIX):
            continue
        if name not in known or name in CODE_ONLY_SETTINGS:
            similar = difflib.get_close_matches(name, list(known), n=1)
            hint = f" (did you mean {similar[0]}?)" if similar else ""
            log.warning("ignoring environment variable %s: not a cqrs_layer setting%s", name, hint)
            continue
        settings[name] = _convert(name, raw, known[name])
    return settings


def _convert(name: str, raw: str, default: Any) -> Any:
    if name in TEXT_SETTINGS:
        return raw or None  # set but empty: as if unset
    if isinstance(default, str):
        return raw
    try:
        if isinstance(default, bool):
            return _boolean(raw)
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        value = json.loads(raw)
    except ValueError:
        raise ValueError(
            f"environment variable {name}={raw!r}: expected {_expected(default)}"
        ) from None
    if not isinstance(value, type(default)):
        raise ValueError(f"environment variable {name}={raw!r}: expected {_expected(default)}")
    return value


def _boolean(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


def _expected(default: Any) -> str:
    if isinstance(default, bool):
        return "true or false"
    if isinstance(default, int):
        return "a whole number"
    if isinstance(default, float):
        return "a number"
    if isinstance(default, dict):
        return 'a JSON object, e.g. {"products.list_products": "shadow"}'
    return f"a JSON {type(default).__name__}"
