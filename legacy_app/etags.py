"""ETags of the versioned resources (products, customers) and the If-Match of their writes.

The tag is the row's ``version`` (bumped by every ORM write of the row) as a *strong*
entity tag, ``"3"``: If-Match compares tags strongly (RFC 9110 13.1.1), so a weak
``W/"3"`` could never satisfy it. It versions the resource's own fields, those PATCH
changes; the live figures shown alongside (stock, ratings, units sold) move with orders,
restocks and reviews without changing it. It is meant for If-Match, not for caching.

Every tagged answer reads the version *before* the body: a write committed in between
makes the tag older than the body (a later If-Match fails, the client reloads), never newer
(which would let a client overwrite a change it never saw).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

from flask import Request, Response, current_app, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from .extensions import db
from .fields import fits_db_int
from .services.preconditions import IF_MATCH, ExpectedVersions

ETAG = "ETag"
#: One element of an If-Match list: ``*``, or an entity tag, weak (``W/"x"``) or strong.
_LIST_ELEMENT = re.compile(r'\s*(\*|W/"[^"]*"|"[^"]*")\s*')
_VERSION_TAG = re.compile(r'"([0-9]{1,10})"')


def entity_tag(version: int) -> str:
    return f'"{version}"'


def current_version(model: Any, ident: int) -> int | None:
    """The row's version now, or None if there is no such row."""
    if not fits_db_int(ident):
        return None
    version: int | None = db.session.scalar(select(model.version).where(model.id == ident))
    return version


def expected_versions(request: Request) -> ExpectedVersions:
    """The versions ``If-Match`` accepts: None (write unconditionally) without the header or
    with ``*``; else the versions its strong tags name, which may be none at all (a weak,
    malformed or foreign tag matches nothing, so the write is refused)."""
    header = request.headers.get(IF_MATCH)
    if header is None:
        return None
    elements = [_LIST_ELEMENT.fullmatch(part) for part in header.split(",")]
    tags = [element.group(1) for element in elements if element is not None]
    if "*" in tags:
        return None
    return frozenset(
        int(match.group(1)) for tag in tags if (match := _VERSION_TAG.fullmatch(tag)) is not None
    )


def tagged_json(body: Any, version: int | None, status: int = 200) -> Response:
    response = jsonify(body)
    response.status_code = status
    if version is not None:
        response.headers[ETAG] = entity_tag(version)
    return response


def versioned_answer(
    model: Any, ident: int, body: Callable[[], Any], status: int = 200
) -> Response:
    """The resource's JSON (from ``body()``) with its ETag, the version read first."""
    version = current_version(model, ident)
    return tagged_json(body(), version, status)


ViewFunction = Callable[..., ResponseReturnValue]


def tagged_with_version(model: Any, id_arg: str) -> Callable[[ViewFunction], ViewFunction]:
    """A view decorator for the reads of a versioned resource, on any path that serves
    them (the legacy view, the read-model query): a 200 carries the row's ETag. The
    version comes from the write model, read before the view runs its own query."""

    def decorate(view: ViewFunction) -> ViewFunction:
        @functools.wraps(view)
        def tagged_view(*args: Any, **view_args: Any) -> Response:
            version = current_version(model, view_args[id_arg])
            response = current_app.make_response(view(*args, **view_args))
            if version is not None and response.status_code == 200:
                response.headers[ETAG] = entity_tag(version)
            return response

        return tagged_view

    return decorate
