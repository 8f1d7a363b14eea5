"""The toolkit's tables, for your migrations.

Add :data:`metadata` to your alembic ``target_metadata`` so autogenerate creates (and
keeps) the toolkit's tables like your own; in ``env.py``::

    from cqrs_layer.schema import metadata as cqrs_metadata
    target_metadata = [db.metadata, cqrs_metadata, your_read_models_metadata]
"""

from .core.tables import metadata

__all__ = ["metadata"]
