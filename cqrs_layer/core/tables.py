"""The toolkit's own tables, on their own MetaData.

Apps include :data:`metadata` in their migrations through :mod:`cqrs_layer.schema`.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite only auto-increments an INTEGER PRIMARY KEY (the rowid alias), not BIGINT.
Position = BigInteger().with_variant(Integer(), "sqlite")

#: One row per domain event, written in the transaction that produced it. ``position`` is
#: the global order readers follow.
outbox = Table(
    "cqrs_outbox",
    metadata,
    Column("position", Position, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("event_type", String(200), nullable=False),
    Column("aggregate_type", String(100), nullable=False),
    Column("aggregate_id", String(100), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("occurred_at", DateTime, nullable=False),  # naive UTC
    Column("correlation_id", String(64), nullable=True),
    Index("ix_cqrs_outbox_aggregate", "aggregate_type", "aggregate_id"),
)

#: Which events each projection has applied; inserted in the same transaction as the
#: read-model change, so an event is applied at most once per projection.
projection_tracking = Table(
    "cqrs_projection_tracking",
    metadata,
    Column("projection", String(100), nullable=False),
    Column("position", Position, nullable=False),
    PrimaryKeyConstraint("projection", "position"),
)

#: The first response to a request carrying an ``Idempotency-Key``, replayed on retries.
#: A row without a response is a claim: a legacy view's first commit took the key, and
#: its response is stored once the view has answered (see :mod:`cqrs_layer.write.idempotency`).
idempotency_keys = Table(
    "cqrs_idempotency_keys",
    metadata,
    Column("endpoint", String(200), nullable=False),
    Column("key", String(200), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("response_body", Text, nullable=True),
    Column("response_headers", JSON, nullable=True),
    Column("created_at", DateTime, nullable=False),  # naive UTC: the claim, or the response
    PrimaryKeyConstraint("endpoint", "key"),
)

#: One row per endpoint whose stage was ever set; endpoints without a row use the config
#: default. ``version`` grows with every change (the flag caches compare it).
flags = Table(
    "cqrs_flags",
    metadata,
    Column("endpoint", String(200), primary_key=True),
    Column("kind", String(10), nullable=False),
    Column("stage", String(20), nullable=False),
    Column("percent", Float, nullable=False),
    Column("sample_rate", Float, nullable=False),
    Column("updated_at", DateTime, nullable=False),  # naive UTC
    Column("updated_by", String(200), nullable=False),
    Column("version", Integer, nullable=False),
)

#: Every flag change, refused ones excepted: who, when, from, to, why, and whether the
#: promotion gate was overridden.
flag_audit = Table(
    "cqrs_flag_audit",
    metadata,
    Column("id", Position, primary_key=True, autoincrement=True),
    Column("endpoint", String(200), nullable=False),
    Column("at", DateTime, nullable=False),  # naive UTC
    Column("actor", String(200), nullable=False),
    Column("from_stage", String(20), nullable=True),  # None: the config default applied
    Column("to_stage", String(20), nullable=False),
    Column("from_percent", Float, nullable=True),
    Column("to_percent", Float, nullable=False),
    Column("reason", Text, nullable=False),
    Column("forced", Boolean, nullable=False),
    Index("ix_cqrs_flag_audit_endpoint_at", "endpoint", "at"),
)

#: One row per comparison of an endpoint's two read paths (and per fallback: a failed
#: new path). Bounded per endpoint (``CQRS_COMPARISON_HISTORY``); readiness, the report
#: and demotion judge the newest rows, so every process agrees.
comparisons = Table(
    "cqrs_comparisons",
    metadata,
    Column("id", Position, primary_key=True, autoincrement=True),
    Column("endpoint", String(200), nullable=False),
    Column("at", DateTime, nullable=False),  # naive UTC
    Column("stage", String(20), nullable=False),
    Column("served_by", String(20), nullable=False),  # legacy | read-model
    Column("outcome", String(20), nullable=False),
    Column("method", String(10), nullable=False),
    Column("path", String(2000), nullable=False),  # the request path and query string
    Column("legacy_status", Integer, nullable=True),
    Column("new_status", Integer, nullable=True),
    Column("legacy_ms", Float, nullable=True),
    Column("new_ms", Float, nullable=True),
    Column("legacy_error", Text, nullable=True),
    Column("new_error", Text, nullable=True),
    Column("diff", JSON, nullable=True),  # {"entries": [...], "truncated": bool}
    Index("ix_cqrs_comparisons_endpoint_id", "endpoint", "id"),
)

#: Read-model keys whose rows must be recomputed, recorded by the capture triggers in the
#: writing transaction (see :mod:`cqrs_layer.read.capture`). ``key`` is a JSON array of
#: the refresh-key values, NULL for "every key" (a TRUNCATE); ``txid`` the writing
#: transaction (PostgreSQL), so a transaction can find its own. A row that commits is a
#: change not applied yet: reads of that model fall back to legacy until it is refreshed.
changes = Table(
    "cqrs_changes",
    metadata,
    Column("id", Position, primary_key=True, autoincrement=True),
    Column("model", String(100), nullable=False),
    Column("key", Text, nullable=True),
    Column("txid", BigInteger, nullable=True),
    Index("ix_cqrs_changes_model_id", "model", "id"),
    Index("ix_cqrs_changes_txid", "txid"),
)

#: Which read models have change capture installed, and from which declaration
#: (``fingerprint``: a hash of the generated triggers; a stale one says "migrate").
captures = Table(
    "cqrs_captures",
    metadata,
    Column("model", String(100), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("installed_at", DateTime, nullable=False),  # naive UTC
)

#: Which endpoint was seen writing which source table of a read model kept only by
#: hand-written projections, inside a command or not: what the promotion gate knows of
#: writers, shared by every process (the write guard adds a row the first time a process
#: sees a pair).
writers = Table(
    "cqrs_writers",
    metadata,
    Column("endpoint", String(200), nullable=False),
    Column("table_name", String(200), nullable=False),
    Column("inside_command", Boolean, nullable=False),
    Column("first_seen", DateTime, nullable=False),  # naive UTC
    PrimaryKeyConstraint("endpoint", "table_name", "inside_command"),
)
