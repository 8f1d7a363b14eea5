"""Every ``flask cqrs`` command on a database the toolkit cannot use (not migrated, not
created, not reachable) prints one line naming the problem and the fix and exits 4, with
no traceback; on a usable one it names the database first, on stderr (its stdout stays
what scripts parse)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import Result
from flask import Flask
from sqlalchemy.engine import make_url

from legacy_app import create_app
from tests.databases import postgres_admin_url

MIGRATE = "run your migrations (alembic upgrade head / flask db upgrade)"
EXIT_DATABASE = 4
COMMANDS = [
    ["routes"],
    ["status"],
    ["outbox"],
    ["backfill"],
    ["verify"],
    ["refresh"],
    ["report"],
    ["flags", "list"],
    ["flags", "history"],
    ["flags", "set", "products.list_products", "shadow", "--reason", "try"],
]


def shop_on(url: str) -> Flask:
    return create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url})


def cqrs(app: Flask, *args: str) -> Result:
    return app.test_cli_runner().invoke(args=["cqrs", *args])


def assert_one_line(result: Result, message: str) -> None:
    assert (result.exit_code, result.stderr) == (EXIT_DATABASE, f"Error: {message}\n")
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_before_the_migrations_each_command_says_to_run_them(
    tmp_path: Path, command: list[str]
) -> None:
    url = f"sqlite:///{tmp_path}/shop.db"
    result = cqrs(shop_on(url), *command)
    if command == ["status"]:  # the first command to run: it shows all it can, then fails
        assert result.exit_code == EXIT_DATABASE
        assert f"the toolkit's tables are missing in {url}: {MIGRATE}" in result.stdout
        return
    assert_one_line(result, f"the toolkit's tables are missing in {url}: {MIGRATE}")
    assert result.stdout == ""


def test_routes_never_guesses_legacy_for_every_endpoint(tmp_path: Path) -> None:
    """Was: a traceback (no such table: cqrs_flags), then every endpoint as legacy, exit 0."""
    result = cqrs(shop_on(f"sqlite:///{tmp_path}/shop.db"), "routes")
    assert result.exit_code == EXIT_DATABASE
    assert "legacy" not in result.output


@pytest.mark.postgres
@pytest.mark.parametrize("command", [["routes"], ["flags", "list"], ["status"]], ids=" ".join)
def test_a_postgresql_database_not_created_yet_says_createdb(command: list[str]) -> None:
    admin = postgres_admin_url()
    if admin is None:
        pytest.skip("no PostgreSQL configured (TEST_POSTGRES_URL)")
    url = make_url(admin).set(database="cqrs_not_created")
    server = f"postgresql+psycopg://{url.username}@{url.host}:{url.port}"
    createdb = f"createdb -h {url.host} -p {url.port} -U {url.username} cqrs_not_created"
    result = cqrs(shop_on(url.render_as_string(hide_password=False)), *command)
    assert_one_line(
        result,
        f"the database cqrs_not_created does not exist on {server}: create it ({createdb}), "
        f"then {MIGRATE}",
    )


def test_an_unreachable_server_is_one_line_with_the_password_hidden() -> None:
    result = cqrs(shop_on("postgresql+psycopg://shop:s3cret@127.0.0.1:1/shop"), "flags", "list")
    assert result.exit_code == EXIT_DATABASE
    assert result.stderr.startswith(
        "Error: cannot connect to postgresql+psycopg://shop:***@127.0.0.1:1/shop: "
    )
    assert len(result.stderr.splitlines()) == 1 and "s3cret" not in result.output


@pytest.mark.parametrize("command", [c for c in COMMANDS if c != ["status"]], ids=" ".join)
def test_on_a_migrated_database_each_command_names_it_first_on_stderr(
    app: Flask, database_url: str, command: list[str]
) -> None:
    result = cqrs(app, *command)
    assert result.exit_code == 0, result.output
    shown = make_url(database_url).render_as_string(hide_password=True)
    assert result.stderr.splitlines()[0] == f"database: {shown}"
