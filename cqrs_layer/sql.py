"""SQL helpers for projections: atomic upserts and counters on SQLite and PostgreSQL.

Each is ONE ``INSERT ... ON CONFLICT`` statement, so two transactions incrementing the
same counter both count and nothing is read back into Python first. Hot paths build
their statement once per dialect with :func:`dialect_insert_for` and ``bindparam()``s.
"""

from .core.sql import dialect_insert, dialect_insert_for, increment, insert_if_absent, upsert

__all__ = ["dialect_insert", "dialect_insert_for", "increment", "insert_if_absent", "upsert"]
