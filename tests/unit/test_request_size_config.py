"""The request body limit (``MAX_CONTENT_LENGTH``) comes from the environment or config."""

from __future__ import annotations

import pytest

from legacy_app import create_app

DATABASE = {"SQLALCHEMY_DATABASE_URI": "sqlite://"}


def test_the_default_is_one_mebibyte(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAX_CONTENT_LENGTH", raising=False)

    assert create_app(DATABASE).config["MAX_CONTENT_LENGTH"] == 1024 * 1024


def test_the_environment_sets_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_CONTENT_LENGTH", "2048")

    assert create_app(DATABASE).config["MAX_CONTENT_LENGTH"] == 2048


def test_config_passed_to_the_factory_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_CONTENT_LENGTH", "2048")

    app = create_app({**DATABASE, "MAX_CONTENT_LENGTH": 4096})

    assert app.config["MAX_CONTENT_LENGTH"] == 4096


@pytest.mark.parametrize("value", ["lots", "-1", "0", "1.5", ""])
def test_a_malformed_value_stops_the_app_from_starting(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("MAX_CONTENT_LENGTH", value)

    with pytest.raises(ValueError, match="MAX_CONTENT_LENGTH"):
        create_app(DATABASE)
