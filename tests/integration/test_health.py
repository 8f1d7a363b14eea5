"""``GET /healthz`` is 503 until the database holds the schema this code needs: the shop's
alembic head and the toolkit's tables. A load balancer then keeps traffic away from a
server started before its migrations ran, instead of letting it answer 500s."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import create_engine, event, text

from legacy_app import create_app
from legacy_app.migrate import head_revisions, upgrade_database
from tests.databases import backends, temporary_postgres_database

HEAD = ", ".join(sorted(head_revisions()))


@pytest.fixture(params=backends())
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of its own (the session's is built without migrations)."""
    if request.param == "postgresql":
        with temporary_postgres_database("cqrs_health") as url:
            yield url
    else:
        yield f"sqlite:///{tmp_path}/shop.db"


def shop(url: str) -> Flask:
    return create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url})


def unavailable(message: str) -> dict[str, object]:
    return {"error": {"status": 503, "code": "service_unavailable", "message": message}}


def test_an_unmigrated_database_is_503(fresh_url: str) -> None:
    response = shop(fresh_url).test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json() == unavailable(
        f"schema not migrated: the database has no alembic revision, this code needs {HEAD} "
        "(run alembic upgrade head)"
    )


def test_a_database_behind_the_code_is_503_naming_both_revisions(fresh_url: str) -> None:
    upgrade_database(fresh_url, "0004")
    response = shop(fresh_url).test_client().get("/healthz")
    assert response.get_json() == unavailable(
        f"schema not migrated: the database is at 0004, this code needs {HEAD} "
        "(run alembic upgrade head)"
    )


def test_the_toolkits_tables_missing_is_503(fresh_url: str) -> None:
    upgrade_database(fresh_url)
    engine = create_engine(fresh_url)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE cqrs_writers"))
    engine.dispose()
    response = shop(fresh_url).test_client().get("/healthz")
    assert response.get_json() == unavailable(
        "schema not migrated: the toolkit's tables cqrs_writers are missing "
        "(run alembic upgrade head)"
    )


def test_a_migrated_database_is_healthy_and_then_costs_one_round_trip(fresh_url: str) -> None:
    app = shop(fresh_url)
    upgrade_database(fresh_url)
    client = app.test_client()
    assert (client.get("/healthz").status_code, client.get("/healthz").get_json()) == (
        200,
        {"status": "ok"},
    )
    with app.app_context():
        engine = app.extensions["sqlalchemy"].engine
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    assert client.get("/healthz").status_code == 200
    # Once found migrated, a process only checks the round trip (GET /healthz is the
    # benchmarks' HTTP floor): the schema moves forward with deploys, not under a server.
    assert statements == ["SELECT 1"]
