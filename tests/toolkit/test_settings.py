"""Toolkit settings from environment variables: typed by their defaults, typos reported."""

from __future__ import annotations

import logging

import pytest

from cqrs_layer.settings import defaults, settings_from_env


def test_values_take_the_type_of_their_default() -> None:
    environ = {
        "CQRS_DEFAULT_SAMPLE_RATE": "0.25",
        "CQRS_READ_TIMEOUT_MS": "750",
        "CQRS_DEFAULT_READ_MODE": "shadow",
        "CQRS_ENDPOINT_MODES": '{"products.list_products": "live"}',
        "PATH": "/usr/bin",  # not ours: left alone
    }

    assert settings_from_env(environ) == {
        "CQRS_DEFAULT_SAMPLE_RATE": 0.25,
        "CQRS_READ_TIMEOUT_MS": 750,
        "CQRS_DEFAULT_READ_MODE": "shadow",
        "CQRS_ENDPOINT_MODES": {"products.list_products": "live"},
    }


def test_a_token_of_digits_stays_text_and_an_empty_one_is_unset() -> None:
    assert settings_from_env({"CQRS_ADMIN_TOKEN": "0123"}) == {"CQRS_ADMIN_TOKEN": "0123"}
    assert settings_from_env({"CQRS_ADMIN_TOKEN": ""}) == {"CQRS_ADMIN_TOKEN": None}


@pytest.mark.parametrize(
    ("name", "raw", "expected"),
    [
        ("CQRS_COMPARISON_WORKERS", "two", "a whole number"),
        ("CQRS_DEFAULT_SAMPLE_RATE", "10%", "a number"),
        ("CQRS_ENDPOINT_MODES", "products.list_products=live", "a JSON object"),
        ("CQRS_ENDPOINT_MODES", '["products.list_products"]', "a JSON object"),
    ],
)
def test_a_malformed_value_is_refused_naming_the_variable(
    name: str, raw: str, expected: str
) -> None:
    with pytest.raises(ValueError, match=f"{name}=.*expected {expected}"):
        settings_from_env({name: raw})


def test_an_unknown_name_is_reported_with_the_likely_setting(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="cqrs_layer.settings"):
        assert settings_from_env({"CQRS_READ_TIMEOUT": "5"}) == {}

    assert "CQRS_READ_TIMEOUT" in caplog.text
    assert "did you mean CQRS_READ_TIMEOUT_MS?" in caplog.text


def test_settings_that_hold_code_cannot_come_from_the_environment() -> None:
    assert "CQRS_ERROR_RENDERER" in defaults()
    assert settings_from_env({"CQRS_ERROR_RENDERER": "my.module:render"}) == {}
