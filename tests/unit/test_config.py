"""The shop's configuration from the environment."""

from __future__ import annotations

import pytest

from cqrs_layer.core.settings import SettingsError
from legacy_app import create_app


def test_the_shop_takes_toolkit_settings_from_the_environment_the_flask_way(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FLASK_CQRS_DEFAULT_SAMPLE_RATE", "0.1")
    monkeypatch.setenv("FLASK_CQRS_COMPARISON_TIMEOUT_MS", "900")
    monkeypatch.setenv("FLASK_CQRS_ADMIN_TOKEN", "12345")

    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})

    assert app.config["CQRS_DEFAULT_SAMPLE_RATE"] == 0.1
    assert app.config["CQRS_COMPARISON_TIMEOUT_MS"] == 900
    with app.app_context():
        toolkit = app.extensions["cqrs"]
    assert toolkit.settings.default_sample_rate == 0.1
    assert toolkit.settings.admin_token == "12345"  # digits from the environment stay text


def test_a_malformed_setting_in_the_environment_stops_start_up_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FLASK_CQRS_DEFAULT_SAMPLE_RATE", "5")

    with pytest.raises(SettingsError, match="CQRS_DEFAULT_SAMPLE_RATE"):
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})


def test_a_misspelt_setting_stops_start_up_with_a_suggestion(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FLASK_CQRS_DEFAULT_READ_MODE", "shadow")

    with pytest.raises(SettingsError, match="did you mean CQRS_DEFAULT_READ_STAGE"):
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})
