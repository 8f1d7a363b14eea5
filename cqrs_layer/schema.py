"""The toolkit's tables and change capture, for your migrations.

Add :data:`metadata` to your alembic ``target_metadata`` so autogenerate creates (and
keeps) the toolkit's tables like your own; in ``env.py``::

    from cqrs_layer.schema import metadata as cqrs_metadata
    target_metadata = [db.metadata, cqrs_metadata, your_read_models_metadata]

Then, in the migration that creates your read models' tables (and again whenever a read
model's ``source()`` changes), install their change capture::

    from cqrs_layer.schema import install_capture, remove_capture
    from myapp.cqrs.read_models import user_stats

    def upgrade():
        ...  # create the read model's table
        install_capture(op, user_stats)

    def downgrade():
        remove_capture(op, user_stats)
        ...
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from .core.read_model import ReadModel
from .core.tables import metadata
from .read import capture

__all__ = ["install_capture", "metadata", "remove_capture"]


def install_capture(op_or_connection: Any, *read_models: ReadModel) -> None:
    """Install (or replace) the triggers that keep ``read_models`` current, whatever
    writes their source tables. Takes alembic's ``op`` or a SQLAlchemy ``Connection``."""
    capture.install(_connection(op_or_connection), read_models)


def remove_capture(op_or_connection: Any, *read_models: ReadModel) -> None:
    capture.remove(_connection(op_or_connection), read_models)


def _connection(op_or_connection: Any) -> Connection:
    if isinstance(op_or_connection, Connection):
        return op_or_connection
    get_bind = getattr(op_or_connection, "get_bind", None)
    if get_bind is None:
        raise TypeError("pass alembic's op or a SQLAlchemy Connection")
    bind: Connection = get_bind()
    return bind
