"""The behaviour suite runs against every app variant (or the stages chosen with the
toolkit's pytest plugin options): see :mod:`tests.variants`."""

from __future__ import annotations

import pytest

from cqrs_layer.testing.plugin import harness_for

from ..variants import Variant, variants_for


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "app_variant" in metafunc.fixturenames:
        variants = variants_for(harness_for(metafunc.config))
        metafunc.parametrize("app_variant", variants, ids=[v.name for v in variants])


@pytest.fixture
def app_variant(request: pytest.FixtureRequest) -> Variant:
    return request.param  # type: ignore[no-any-return]
