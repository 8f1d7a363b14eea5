"""The JSON admin API under ``/cqrs/api/``: read and change flags, read the audit log.

Off (every route 404) unless ``CQRS_ADMIN_TOKEN`` is set: a string, or a mapping of token
name → token so the audit log says whose token made a change (``api:<name>``; a single
string token is ``api:admin``). Requests carry ``Authorization: Bearer <token>``; a wrong
or missing token is 401. Tokens are compared in constant time, each one, every time.

    GET  /cqrs/api/flags                    every wrapped endpoint's flag
    GET  /cqrs/api/flags/<endpoint>         one flag
    PUT  /cqrs/api/flags/<endpoint>         {stage, percent?, sample_rate?, reason, force?}
    GET  /cqrs/api/report/<endpoint>        comparisons in numbers, and readiness to promote
    GET  /cqrs/api/audit?endpoint=&limit=   audited changes, newest first

A change answers the flag after it, with ``"changed": false`` when it changed nothing.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, jsonify, request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..core.errors import CommandRejected, NotFound, ValidationFailed, render_json_error
from ..rollout.changes import MAX_REASON_LENGTH
from .context import toolkit_of
from .reporting import endpoint_report

blueprint = Blueprint("cqrs_admin", __name__, url_prefix="/cqrs/api")
_ACTOR_KEY = "cqrs.admin_actor"
MAX_AUDIT_LIMIT = 1000


class FlagChange(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    stage: str
    percent: float | None = None
    sample_rate: float | None = None
    reason: str = Field(min_length=1, max_length=MAX_REASON_LENGTH)
    force: bool = False


class Unauthorized(CommandRejected):
    status, code = 401, "unauthorized"


@blueprint.before_request
def _authenticate() -> Response | None:
    tokens = _configured_tokens(toolkit_of().settings.admin_token)
    if not tokens:
        raise NotFound("the admin API is off (set CQRS_ADMIN_TOKEN)")
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    actor = None
    for name, token in tokens.items():
        # No early exit: every token is compared, so timing says nothing about which.
        if hmac.compare_digest(presented.strip().encode(), token.encode()):
            actor = f"api:{name}"
    if scheme.lower() != "bearer" or actor is None:
        raise Unauthorized("a valid bearer token is required", field="Authorization")
    request.environ[_ACTOR_KEY] = actor
    return None


@blueprint.errorhandler(CommandRejected)
def _render(error: CommandRejected) -> Any:
    response, status = render_json_error(error)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="cqrs"'
    return response, status


@blueprint.get("/flags")
def list_flags() -> Response:
    return jsonify({"items": [flag.to_dict() for flag in toolkit_of().flags.all()]})


@blueprint.get("/flags/<path:endpoint>")
def get_flag(endpoint: str) -> Response:
    return jsonify(toolkit_of().flags.get(endpoint).to_dict())


@blueprint.route("/flags/<path:endpoint>", methods=["PUT", "POST"])
def change_flag(endpoint: str) -> Response:
    try:
        change = FlagChange.model_validate(_json_object())
    except ValidationError as exc:
        raise ValidationFailed.from_pydantic(exc) from exc
    done = toolkit_of().changes.change(
        endpoint,
        change.stage,
        percent=change.percent,
        sample_rate=change.sample_rate,
        actor=request.environ[_ACTOR_KEY],
        reason=change.reason,
        force=change.force,
    )
    return jsonify({**done.after.to_dict(), "changed": done.changed})


@blueprint.get("/report/<path:endpoint>")
def report(endpoint: str) -> Response:
    toolkit = toolkit_of()
    if toolkit.registry.endpoint(endpoint).kind != "read":
        raise NotFound(f"{endpoint} is a write endpoint: only reads are compared", field="endpoint")
    return jsonify(endpoint_report(toolkit, endpoint, last=5))


@blueprint.get("/audit")
def audit_log() -> Response:
    raw_limit = request.args.get("limit", "50")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_AUDIT_LIMIT:
        raise ValidationFailed(f"limit must be from 1 to {MAX_AUDIT_LIMIT}", field="limit")
    entries = toolkit_of().flags.history(request.args.get("endpoint"), limit=int(raw_limit))
    return jsonify({"items": [entry.to_dict() for entry in entries]})


def _json_object() -> dict[str, Any]:
    """The request's JSON object body, or a 400 naming ``body``."""
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # nested deeper than the parser can go: not a 500
        raise CommandRejected("the body is nested too deeply", field="body") from None
    if not isinstance(body, dict):
        raise CommandRejected("the body must be a JSON object", field="body")
    return body


def _configured_tokens(configured: Any) -> dict[str, str]:
    if not configured:
        return {}
    if isinstance(configured, Mapping):
        return {str(name): str(token) for name, token in configured.items() if token}
    return {"admin": str(configured)}
