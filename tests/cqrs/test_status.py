"""``flask cqrs status [--json]`` on the shop: the first command to run in any app.

The database it uses, the toolkit's tables, every wrapped endpoint with what blocks its
next stage (the gate's own blockers), every read model with its rows, pending changes and
how it is kept current, fallbacks with their reasons, and endpoints declared but not
served by the app."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from flask import Flask
from sqlalchemy import update
from sqlalchemy.engine import make_url

from cqrs_layer.core.tables import flags
from cqrs_layer.ops.context import toolkit_of
from cqrs_layer.rollout.history import ComparisonResult
from cqrs_layer.schema import install_capture
from cqrs_layer.schema import metadata as toolkit_metadata
from legacy_app import create_app
from legacy_app.cqrs.read_models import READ_MODELS
from legacy_app.models import Stock

from ..factories import CategoryFactory, ProductFactory
from .outside import write_outside_the_app

MIGRATE = "run your migrations (alembic upgrade head / flask db upgrade)"
LIST = "products.list_products"


def status(app: Flask, *args: str) -> Result:
    return app.test_cli_runner().invoke(args=["cqrs", "status", *args])


def document(app: Flask) -> dict[str, Any]:
    result = status(app, "--json")
    assert result.exit_code in (0, 4), result.output
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


def endpoint(doc: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [each for each in doc["endpoints"] if each["endpoint"] == name]
    return found


def read_model(doc: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [each for each in doc["read_models"] if each["name"] == name]
    return found


def set_stage(app: Flask, name: str, stage: str) -> None:
    toolkit_of(app).changes.change(name, stage, actor="test", reason="status", force=True)


@pytest.fixture
def shop(app, db_session):
    """Kitchen; product 1 MUG, stock 5: the read models exact (change capture)."""
    kitchen = CategoryFactory(name="Kitchen")
    ProductFactory(sku="MUG", name="Mug", price_cents=1000, category=kitchen)
    db_session.execute(update(Stock).values(quantity=5))
    db_session.commit()


# ---------------------------------------------------------------- a migrated shop


def test_the_first_line_names_the_database_and_the_tables_are_all_there(
    app: Flask, database_url: str
) -> None:
    result = status(app)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    shown = make_url(database_url).render_as_string(hide_password=True)
    assert lines[0] == f"database: {shown}"
    assert lines[1] == f"toolkit tables: all {len(toolkit_metadata.tables)} present"


def test_every_wrapped_endpoint_with_its_kind_stage_and_next_step(app: Flask) -> None:
    set_stage(app, LIST, "shadow")
    set_stage(app, "orders.place_order", "command")
    doc = document(app)
    wrapped = toolkit_of(app).registry.endpoints
    assert [each["endpoint"] for each in doc["endpoints"]] == sorted(wrapped)
    assert {k: endpoint(doc, LIST)[k] for k in ("kind", "stage", "percent", "next")} == {
        "kind": "read",
        "stage": "shadow",
        "percent": 100.0,
        "next": {"stage": "live", "percent": None},
    }
    place = endpoint(doc, "orders.place_order")
    assert (place["kind"], place["stage"], place["next"], place["blockers"]) == (
        "write",
        "command",
        None,
        [],
    )
    assert endpoint(doc, "products.get_product")["next"] == {"stage": "shadow", "percent": None}

    table = status(app).stdout
    assert "ENDPOINT" in table and "NEXT" in table
    assert any(line.split()[:4] == [LIST, "read", "shadow", "100%"] for line in table.splitlines())


def test_what_blocks_the_next_stage_is_the_gates_own_verdict(app: Flask, shop: None) -> None:
    set_stage(app, LIST, "shadow")
    doc = document(app)
    blockers = endpoint(doc, LIST)["blockers"]
    assert blockers == [b.to_dict() for b in toolkit_of(app).gate.blockers(LIST)]
    assert blockers[0]["message"] == (
        f"{LIST} is not ready: 0 of the 50 comparisons it needs (see flask cqrs report)"
    )
    # Moving to shadow is not gated: nothing blocks an endpoint on legacy.
    assert endpoint(doc, "products.get_product")["blockers"] == []
    text = status(app).stdout
    assert f"{LIST} -> live:\n    - {blockers[0]['message']}" in text
    # The gate verified the endpoint's read model: status shows what it found.
    assert read_model(doc, "catalog")["verified"] == {"ok": True, "drift": 0, "behind": 0}
    assert read_model(doc, "daily_sales")["verified"] is None


def test_fallbacks_with_their_reasons(app: Flask) -> None:
    set_stage(app, LIST, "live")
    history = toolkit_of(app).history
    for error in ("TimeoutError: read model path over 500 ms",) * 2 + ("KeyError: 'x'",):
        history.record(
            ComparisonResult(LIST, "live", "legacy", "fallback", "GET", "/", new_error=error)
        )
    doc = document(app)
    assert endpoint(doc, LIST)["fallbacks"] == {
        "count": 3,
        "reasons": {"TimeoutError: read model path over 500 ms": 2, "KeyError: 'x'": 1},
        "stale": 0,
    }
    assert (
        f"  {LIST}: 3 (TimeoutError: read model path over 500 ms: 2; KeyError: 'x': 1)"
        in status(app).stdout
    )


def test_every_read_model_with_rows_pending_changes_and_how_it_is_kept(
    app: Flask, shop: None
) -> None:
    write_outside_the_app(app, "UPDATE stock SET quantity = 42 WHERE product_id = 1")
    doc = document(app)
    assert [each["name"] for each in doc["read_models"]] == sorted(m.name for m in READ_MODELS)
    catalog = read_model(doc, "catalog")
    assert (catalog["rows"], catalog["pending_changes"], catalog["capture"]) == (1, 1, "current")
    assert catalog["kept_by"] == ["refresh-by-key", "projection catalog"]
    assert read_model(doc, "categories")["kept_by"] == ["refresh-by-key"]
    line = next(line for line in status(app).stdout.splitlines() if line.startswith("catalog "))
    assert line.split()[:3] == ["catalog", "1", "1"]


def test_a_read_model_without_capture_says_so(app: Flask) -> None:
    with toolkit_of(app).engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM cqrs_captures WHERE model = 'categories'")
    try:
        categories = read_model(document(app), "categories")
        assert (categories["capture"], categories["kept_by"]) == ("missing", [])
    finally:
        with toolkit_of(app).engine.begin() as connection:
            install_capture(connection, *READ_MODELS)


def test_endpoints_declared_but_not_served_by_the_app(database_url: str, app: Flask) -> None:
    """A typo in CQRS_ENDPOINT_STAGES, a flag left behind by a renamed endpoint."""
    with toolkit_of(app).engine.begin() as connection:
        connection.execute(
            flags.insert().values(
                endpoint="products.old_list", kind="read", stage="live", percent=100.0,
                sample_rate=1.0, updated_at=datetime(2026, 1, 1), updated_by="ana", version=1,
            )
        )  # fmt: skip
    typo = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "CQRS_ENDPOINT_STAGES": {"products.list_product": "shadow"},
        }
    )
    with typo.app_context():  # the commands run in the current app context if there is one
        doc = document(typo)
        text = status(typo).stdout
    assert doc["not_found"] == [
        {"endpoint": "products.list_product", "declared_in": ["CQRS_ENDPOINT_STAGES"]},
        {"endpoint": "products.old_list", "declared_in": ["cqrs_flags"]},
    ]
    assert "  products.old_list (cqrs_flags)" in text


# ---------------------------------------------------------------- before the migrations


def test_an_unmigrated_database_shows_what_is_missing_and_the_fix(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/shop.db"
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url})
    result = status(app)
    assert result.exit_code == 4
    lines = result.stdout.splitlines()
    assert lines[:2] == [
        f"database: {url}",
        f"the toolkit's tables are missing in {url}: {MIGRATE}",
    ]
    assert "Traceback" not in result.output

    doc = document(app)
    assert doc["database"] == {"url": url, "problem": None}
    assert doc["toolkit_tables"]["missing"] == [t.name for t in toolkit_metadata.sorted_tables]
    assert doc["toolkit_tables"]["fix"] == MIGRATE
    # What the app serves without its flags table: the settings, every endpoint legacy.
    assert {(each["stage"], each["source"]) for each in doc["endpoints"]} == {
        ("legacy", "settings")
    }
    assert len(doc["endpoints"]) == len(toolkit_of(app).registry.endpoints)
    assert {each["rows"] for each in doc["read_models"]} == {None}  # no table yet


def test_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/missing/folder/shop.db"
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url})
    result = status(app)
    assert (result.exit_code, result.stdout) == (4, "")
    assert result.stderr.startswith(f"Error: cannot open the SQLite database {tmp_path}")
    assert len(result.stderr.splitlines()) == 1
    as_json = status(app, "--json")
    assert as_json.exit_code == 4
    assert json.loads(as_json.stdout)["database"]["problem"].startswith("cannot open")
