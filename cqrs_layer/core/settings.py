"""Every ``CQRS_*`` setting, with its type, default and bounds, in one place.

The extension reads them from ``app.config`` once, in ``init_app``: a value that is
malformed, out of bounds or unknown (a typo) stops start-up with the key named, because
a server must not run on a setting it misread. To take them from the environment, fill
``app.config`` the usual Flask way before ``init_app``::

    app.config.from_prefixed_env()   # FLASK_CQRS_WRITE_GUARD=strict -> CQRS_WRITE_GUARD

(``from_prefixed_env`` parses values as JSON where it can, so ``FLASK_CQRS_DEFAULT_SAMPLE_RATE=0.1``
is a number and ``FLASK_CQRS_ENDPOINT_STAGES='{"products.list_products": "shadow"}'`` a mapping.)
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ImportString,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

PREFIX = "CQRS_"

ReadStage = Literal["legacy", "shadow", "live", "complete"]
WriteStage = Literal["legacy", "command"]
GuardMode = Literal["off", "warn", "strict"]


class SettingsError(ValueError):
    """A ``CQRS_*`` setting the toolkit cannot run with; the message names the key."""


class Settings(BaseModel):
    """The toolkit's settings; each field's alias is its ``app.config`` key."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        populate_by_name=True,
        coerce_numbers_to_str=True,  # a token of digits from the environment stays text
        arbitrary_types_allowed=True,
    )

    # -- which path serves an endpoint without a recorded flag
    default_write_stage: WriteStage = Field("legacy", alias="CQRS_DEFAULT_WRITE_STAGE")
    default_read_stage: ReadStage = Field("legacy", alias="CQRS_DEFAULT_READ_STAGE")
    #: Endpoint name -> stage; checked against each endpoint's kind when it is wrapped.
    endpoint_stages: dict[str, str] = Field(default_factory=dict, alias="CQRS_ENDPOINT_STAGES")

    # -- the write side
    write_guard: GuardMode = Field("warn", alias="CQRS_WRITE_GUARD")
    #: Apply the registered (hand-written) projections inside commands; off, every read
    #: model is kept by refresh-by-key alone.
    inline_projections: bool = Field(True, alias="CQRS_INLINE_PROJECTIONS")
    #: Recompute the read-model rows a write changed inside the writing transaction, just
    #: before it commits. Off, a write only records its changes (the capture triggers)
    #: and commits: the app applies them after the first read that finds them pending
    #: (that read and the next ones fall back to legacy meanwhile), or a
    #: ``flask cqrs refresh --follow`` worker does. Writes pay less; live reads lag.
    refresh_in_writes: bool = Field(True, alias="CQRS_REFRESH_IN_WRITES")
    #: Renders a refusal (``CommandRejected``) as a response: a callable or "module:function".
    error_renderer: ImportString[Callable[..., Any]] | None = Field(
        None, alias="CQRS_ERROR_RENDERER"
    )

    # -- flags and percentage rollouts
    flag_refresh_seconds: float = Field(0.5, gt=0, le=60, alias="CQRS_FLAG_REFRESH_SECONDS")
    default_sample_rate: float = Field(1.0, ge=0, le=1, alias="CQRS_DEFAULT_SAMPLE_RATE")
    subject_header: str = Field("X-CQRS-Subject", min_length=1, alias="CQRS_SUBJECT_HEADER")
    #: Reads a request's rollout subject: a callable or "module:function"; else the header.
    subject_key: ImportString[Callable[..., Any]] | None = Field(None, alias="CQRS_SUBJECT_KEY")
    #: The admin API's bearer token, or a mapping of token name -> token; unset: API off.
    admin_token: str | dict[str, str] | None = Field(None, alias="CQRS_ADMIN_TOKEN")

    # -- time budgets
    read_timeout_ms: float = Field(500, gt=0, le=600_000, alias="CQRS_READ_TIMEOUT_MS")
    #: How long a write may spend refreshing its read models (locks included) before it
    #: gives up and commits without them (they stay pending; reads fall back meanwhile).
    refresh_timeout_ms: float = Field(200, gt=0, le=60_000, alias="CQRS_REFRESH_TIMEOUT_MS")
    comparison_timeout_ms: float = Field(2000, gt=0, le=600_000, alias="CQRS_COMPARISON_TIMEOUT_MS")
    #: How long a write of a wrapped write endpoint (either path) may wait for a lock, or
    #: run a statement (PostgreSQL), before it is rolled back and answered 503
    #: ``write_timeout``; also how long a request waits for a concurrent one with its
    #: ``Idempotency-Key`` to answer before it is told 409 ``idempotency_key_in_use``.
    write_timeout_ms: float = Field(3000, gt=0, le=600_000, alias="CQRS_WRITE_TIMEOUT_MS")

    # -- comparisons: the pool, the history, and the judgement over the newest ones
    comparison_workers: int = Field(2, ge=1, le=64, alias="CQRS_COMPARISON_WORKERS")
    comparison_queue: int = Field(100, ge=0, le=100_000, alias="CQRS_COMPARISON_QUEUE")
    comparison_history: int = Field(1000, ge=1, le=1_000_000, alias="CQRS_COMPARISON_HISTORY")
    #: Requests with a larger body (bytes) are served but not compared.
    comparison_max_body: int = Field(1_000_000, ge=0, alias="CQRS_COMPARISON_MAX_BODY")
    #: The newest comparisons of an endpoint that readiness, the gate and demotion judge.
    comparison_window: int = Field(50, ge=1, le=100_000, alias="CQRS_COMPARISON_WINDOW")
    promotion_min_comparisons: int = Field(
        50, ge=0, le=100_000, alias="CQRS_PROMOTION_MIN_COMPARISONS"
    )
    demotion_min_comparisons: int = Field(
        20, ge=1, le=100_000, alias="CQRS_DEMOTION_MIN_COMPARISONS"
    )
    demotion_mismatch_rate: float = Field(0.01, ge=0, le=1, alias="CQRS_DEMOTION_MISMATCH_RATE")
    demotion_error_rate: float = Field(0.05, ge=0, le=1, alias="CQRS_DEMOTION_ERROR_RATE")

    @model_validator(mode="after")
    def _windows_fit(self) -> Settings:
        for name in ("promotion_min_comparisons", "demotion_min_comparisons"):
            if getattr(self, name) > self.comparison_window:
                key = type(self).model_fields[name].alias
                raise ValueError(
                    f"{key} ({getattr(self, name)}) exceeds CQRS_COMPARISON_WINDOW "
                    f"({self.comparison_window}): that many comparisons never fit the window"
                )
        if self.comparison_window > self.comparison_history:
            raise ValueError(
                f"CQRS_COMPARISON_WINDOW ({self.comparison_window}) exceeds "
                f"CQRS_COMPARISON_HISTORY ({self.comparison_history}), which is all that is kept"
            )
        return self

    @field_validator("*", mode="before")
    @classmethod
    def _no_booleans_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        # Python's bool is an int: FLASK_CQRS_COMPARISON_WORKERS=true would become 1.
        numeric = cls.model_fields[str(info.field_name)].annotation in (int, float)
        if numeric and isinstance(value, bool):
            raise ValueError("must be a number, not true or false")
        return value

    @classmethod
    def config_keys(cls) -> list[str]:
        return [str(field.alias) for field in cls.model_fields.values()]

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        """The settings found in ``config`` (other keys ignored), validated.

        Raises :class:`SettingsError` naming every bad key, and every unknown ``CQRS_*``
        key with the setting it most resembles.
        """
        given = {key: value for key, value in config.items() if key.startswith(PREFIX)}
        known = cls.config_keys()
        unknown = [key for key in given if key not in known]
        if unknown:
            raise SettingsError("; ".join(_unknown(key, known) for key in sorted(unknown)))
        try:
            return cls.model_validate(given)
        except ValidationError as exc:
            raise SettingsError(_describe(exc)) from None

    def to_config(self) -> dict[str, Any]:
        """Every setting under its ``app.config`` key (defaults included)."""
        values = {}
        for name, field in type(self).model_fields.items():
            values[str(field.alias)] = getattr(self, name)
        return values


def defaults() -> dict[str, Any]:
    """Every setting the toolkit reads, with its default."""
    return Settings.model_validate({}).to_config()


def _unknown(key: str, known: list[str]) -> str:
    similar = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    hint = f" (did you mean {similar[0]}?)" if similar else ""
    return f"{key} is not a cqrs_layer setting{hint}"


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_url=False):
        message = str(error["msg"]).removeprefix("Value error, ")
        if not error["loc"]:  # a rule across settings: its message names the keys
            problems.append(message)
            continue
        key = ".".join(str(part) for part in error["loc"])
        problems.append(f"{key}: {message} (got {error.get('input')!r})")
    return "; ".join(problems)
