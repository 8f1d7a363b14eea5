"""The shop with no endpoint wrapped: the baseline of ``overhead:legacy-stage`` (bench only).

``create_app()`` builds the shop exactly as production does (toolkit and all), then puts
every wrapped endpoint's own legacy view back in ``app.view_functions``. What remains is
the cost the wrapper adds at stage ``legacy`` (flag evaluation, the served-by header),
measured against this server; the shop itself needs no switch for it.

    gunicorn 'bench.unwrapped_app:create_app()'
"""

from __future__ import annotations

from flask import Flask

from cqrs_layer.ops.context import toolkit_of
from legacy_app import create_app as create_shop


def create_app() -> Flask:
    app = create_shop()
    for endpoint, wrapped in toolkit_of(app).router.wrapped.items():
        app.view_functions[endpoint] = wrapped.legacy_view
    return app
