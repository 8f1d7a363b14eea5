"""The toolkit's settings: one typed definition read from ``app.config`` once, in
``init_app``; malformed, out-of-bounds and unknown keys stop start-up naming the key.
From the environment they come the Flask way: ``app.config.from_prefixed_env()``."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask, Request

from cqrs_layer.core.errors import CommandRejected
from cqrs_layer.core.settings import Settings, SettingsError, defaults
from cqrs_layer.ops.context import toolkit_of

from .helpers import running
from .toyapp import create_toy_app, wire_cqrs


def render_plain(error: CommandRejected) -> tuple[str, int]:
    return error.message, error.status


def tenant_of(request: Request) -> str | None:
    return request.headers.get("X-Tenant")


# ---------------------------------------------------------------- Settings.from_config


def test_without_settings_every_default_applies() -> None:
    chosen = Settings.from_config({"SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    assert chosen == Settings.model_validate({})
    assert chosen.to_config() == defaults()
    assert (
        chosen.default_read_stage,
        chosen.write_guard,
        chosen.comparison_window,
        chosen.write_timeout_ms,
    ) == ("legacy", "warn", 50, 3000)
    assert sorted(defaults()) == sorted(Settings.config_keys())
    assert all(key.startswith("CQRS_") for key in defaults())


def test_values_are_typed() -> None:
    chosen = Settings.from_config(
        {
            "CQRS_DEFAULT_SAMPLE_RATE": 0.25,
            "CQRS_READ_TIMEOUT_MS": "750",
            "CQRS_COMPARISON_WORKERS": "4",
            "CQRS_DEFAULT_READ_STAGE": "shadow",
            "CQRS_ENDPOINT_STAGES": {"products.list_products": "live"},
            "CQRS_ADMIN_TOKEN": 123,  # a token of digits stays text
            "PATH": "/usr/bin",  # not ours: left alone
        }
    )
    assert chosen.default_sample_rate == 0.25
    assert (chosen.read_timeout_ms, type(chosen.read_timeout_ms)) == (750.0, float)
    assert (chosen.comparison_workers, type(chosen.comparison_workers)) == (4, int)
    assert chosen.default_read_stage == "shadow"
    assert chosen.endpoint_stages == {"products.list_products": "live"}
    assert chosen.admin_token == "123"


@pytest.mark.parametrize("configured", [render_plain, f"{__name__}:render_plain"])
def test_settings_holding_code_take_a_callable_or_an_import_string(configured: object) -> None:
    chosen = Settings.from_config(
        {"CQRS_ERROR_RENDERER": configured, "CQRS_SUBJECT_KEY": f"{__name__}:tenant_of"}
    )
    assert chosen.error_renderer is render_plain
    assert chosen.subject_key is tenant_of


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("CQRS_COMPARISON_WORKERS", "two", "a valid integer"),
        ("CQRS_COMPARISON_WORKERS", 2.5, "a valid integer"),
        ("CQRS_COMPARISON_WORKERS", 0, "greater than or equal to 1"),
        ("CQRS_DEFAULT_SAMPLE_RATE", "10%", "a valid number"),
        ("CQRS_DEFAULT_SAMPLE_RATE", 1.5, "less than or equal to 1"),
        ("CQRS_FLAG_REFRESH_SECONDS", 0, "greater than 0"),
        ("CQRS_READ_TIMEOUT_MS", -1, "greater than 0"),
        ("CQRS_WRITE_TIMEOUT_MS", 0, "greater than 0"),
        ("CQRS_WRITE_TIMEOUT_MS", 700_000, "less than or equal to 600000"),
        ("CQRS_DEFAULT_READ_STAGE", "command", "'legacy', 'shadow', 'live' or 'complete'"),
        ("CQRS_DEFAULT_WRITE_STAGE", "shadow", "'legacy' or 'command'"),
        ("CQRS_WRITE_GUARD", "loud", "'off', 'warn' or 'strict'"),
        ("CQRS_COMPARISON_WORKERS", True, "must be a number, not true or false"),
        ("CQRS_DEFAULT_SAMPLE_RATE", False, "must be a number, not true or false"),
        ("CQRS_ENDPOINT_STAGES", "products.list_products=live", "a valid dictionary"),
        ("CQRS_ERROR_RENDERER", "no_such_module:render", "No module named 'no_such_module'"),
    ],
)
def test_a_malformed_or_out_of_bounds_value_is_refused_naming_the_key(
    key: str, value: Any, problem: str
) -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_config({key: value})
    assert isinstance(refused.value, ValueError)
    message = str(refused.value)
    assert message.startswith(f"{key}: ")
    assert problem in message
    assert f"(got {value!r})" in message


def test_every_bad_key_is_named_at_once() -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_config({"CQRS_COMPARISON_WORKERS": "two", "CQRS_WRITE_GUARD": "loud"})
    assert "CQRS_COMPARISON_WORKERS: " in str(refused.value)
    assert "CQRS_WRITE_GUARD: " in str(refused.value)


def test_an_unknown_key_is_refused_with_the_setting_it_resembles() -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_config({"CQRS_READ_TIMEOUT": 5, "CQRS_DEFAULT_READ_MODE": "shadow"})
    assert str(refused.value) == (
        "CQRS_DEFAULT_READ_MODE is not a cqrs_layer setting "
        "(did you mean CQRS_DEFAULT_READ_STAGE?); "
        "CQRS_READ_TIMEOUT is not a cqrs_layer setting (did you mean CQRS_READ_TIMEOUT_MS?)"
    )
    with pytest.raises(SettingsError, match=r"^CQRS_XYZZY is not a cqrs_layer setting$"):
        Settings.from_config({"CQRS_XYZZY": 1})


@pytest.mark.parametrize(
    "removed", ["CQRS_OUTBOX_SHOW", "CQRS_REPORT_LAST_DIFFS", "CQRS_DEMOTION_WINDOW"]
)
def test_removed_settings_are_unknown(removed: str) -> None:
    with pytest.raises(SettingsError, match=f"{removed} is not a cqrs_layer setting"):
        Settings.from_config({removed: 5})


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"CQRS_PROMOTION_MIN_COMPARISONS": 60},
            "CQRS_PROMOTION_MIN_COMPARISONS (60) exceeds CQRS_COMPARISON_WINDOW (50): "
            "that many comparisons never fit the window",
        ),
        (
            {"CQRS_PROMOTION_MIN_COMPARISONS": 5, "CQRS_COMPARISON_WINDOW": 10},
            "CQRS_DEMOTION_MIN_COMPARISONS (20) exceeds CQRS_COMPARISON_WINDOW (10): "
            "that many comparisons never fit the window",
        ),
        (
            {"CQRS_COMPARISON_WINDOW": 100, "CQRS_COMPARISON_HISTORY": 60},
            "CQRS_COMPARISON_WINDOW (100) exceeds CQRS_COMPARISON_HISTORY (60), "
            "which is all that is kept",
        ),
    ],
)
def test_minimum_comparisons_cannot_exceed_the_window(config: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_config(config)
    assert str(refused.value) == message


def test_minimums_that_fit_the_window_are_accepted() -> None:
    chosen = Settings.from_config(
        {
            "CQRS_COMPARISON_WINDOW": 10,
            "CQRS_PROMOTION_MIN_COMPARISONS": 10,
            "CQRS_DEMOTION_MIN_COMPARISONS": 3,
        }
    )
    assert (chosen.comparison_window, chosen.promotion_min_comparisons) == (10, 10)
    assert chosen.demotion_min_comparisons == 3


# ---------------------------------------------------------------- through init_app


def unwired_app(database_url: str) -> Flask:
    return create_toy_app({"SQLALCHEMY_DATABASE_URI": database_url}, wired=False)


def test_settings_come_from_the_environment_the_flask_way(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLASK_CQRS_DEFAULT_SAMPLE_RATE", "0.1")
    monkeypatch.setenv("FLASK_CQRS_READ_TIMEOUT_MS", "750")
    monkeypatch.setenv("FLASK_CQRS_WRITE_GUARD", "strict")
    monkeypatch.setenv("FLASK_CQRS_ENDPOINT_STAGES", '{"library.get_book": "shadow"}')
    monkeypatch.setenv("FLASK_CQRS_ADMIN_TOKEN", "0123")
    monkeypatch.setenv("FLASK_CQRS_ERROR_RENDERER", f"{__name__}:render_plain")
    app = unwired_app(database_url)
    app.config.from_prefixed_env()
    wire_cqrs(app)

    chosen = toolkit_of(app).settings
    assert chosen.default_sample_rate == 0.1
    assert chosen.read_timeout_ms == 750.0
    assert chosen.write_guard == "strict"
    assert chosen.endpoint_stages == {"library.get_book": "shadow"}
    assert chosen.admin_token == "0123"  # digits, kept as text
    assert chosen.error_renderer is render_plain
    with running(app):
        assert toolkit_of(app).flags.get("library.get_book").stage == "shadow"


def test_a_malformed_value_from_the_environment_stops_init_app_naming_the_key(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLASK_CQRS_COMPARISON_WORKERS", "two")
    app = unwired_app(database_url)
    app.config.from_prefixed_env()
    with pytest.raises(SettingsError, match=r"^CQRS_COMPARISON_WORKERS: .*\(got 'two'\)$"):
        wire_cqrs(app)
    assert "cqrs" not in app.extensions


def test_a_typo_in_the_environment_stops_init_app(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLASK_CQRS_WRITE_GAURD", "strict")
    app = unwired_app(database_url)
    app.config.from_prefixed_env()
    with pytest.raises(SettingsError, match=r"did you mean CQRS_WRITE_GUARD\?"):
        wire_cqrs(app)


def test_settings_are_read_once_when_the_app_is_built(database_url: str) -> None:
    app = create_toy_app({"SQLALCHEMY_DATABASE_URI": database_url, "CQRS_WRITE_GUARD": "off"})
    toolkit = toolkit_of(app)
    app.config["CQRS_WRITE_GUARD"] = "strict"  # too late: nothing reads it again
    assert toolkit.settings.write_guard == toolkit.guard.mode == "off"
