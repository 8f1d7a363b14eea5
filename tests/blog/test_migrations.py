"""`flask db upgrade` builds exactly the schema the models and the toolkit declare (with the
read model's change capture); downgrade removes it."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, text

from cqrs_layer.schema import metadata as cqrs_metadata

from ..databases import backends, temporary_postgres_database
from .app.extensions import db
from .harness import build_app


@pytest.fixture(params=backends())
def empty_database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A new database, not the suite's shared one, which create_all() has already filled."""
    if request.param == "postgresql":
        with temporary_postgres_database(prefix="blog_migrations") as url:
            yield url
    else:
        with tempfile.TemporaryDirectory(prefix="blog-migrations-") as tmp:
            yield f"sqlite:///{tmp}/blog.db"


def test_upgrade_builds_the_models_schema_and_downgrade_drops_it(empty_database_url):
    app = build_app(empty_database_url)
    with app.app_context():
        try:
            upgrade()
            with db.engine.connect() as conn:
                context = MigrationContext.configure(conn)
                differences = compare_metadata(context, [db.metadata, cqrs_metadata])
                tables = set(inspect(conn).get_table_names())
            assert differences == []
            blog = {"alembic_version", "user", "post", "followers", "user_stats"}
            assert tables == blog | set(cqrs_metadata.tables)
            with db.engine.connect() as conn:
                captured = conn.execute(text("SELECT model FROM cqrs_captures")).scalars().all()
            assert captured == ["user_stats"]

            downgrade(revision="base")
            assert inspect(db.engine).get_table_names() == ["alembic_version"]
        finally:
            db.engine.dispose()
