"""The shop's configuration from the environment."""

from __future__ import annotations

import pytest

from legacy_app import create_app


def test_the_shop_reads_them_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CQRS_DEFAULT_SAMPLE_RATE", "0.1")
    monkeypatch.setenv("CQRS_COMPARISON_TIMEOUT_MS", "900")

    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})

    assert app.config["CQRS_DEFAULT_SAMPLE_RATE"] == 0.1
    assert app.config["CQRS_COMPARISON_TIMEOUT_MS"] == 900
