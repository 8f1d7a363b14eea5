"""A write waits a bounded time for a lock (``CQRS_WRITE_TIMEOUT_MS``), then answers 503.

Another connection holds the ``stock`` table (PostgreSQL: ``LOCK TABLE stock IN ACCESS
EXCLUSIVE MODE``, what a long ``ALTER TABLE`` takes; SQLite, which has one lock for the
whole database: a transaction writing ``stock``). An order placed meanwhile, through its
command or its legacy view, gives up at the bound with 503 ``write_timeout`` and
``Retry-After``, leaves nothing behind, and is counted; once the lock is gone the same
request goes through.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from legacy_app.extensions import db
from legacy_app.models import Order

from ..api import assert_error, shop_snapshot
from ..factories import CustomerFactory, ProductFactory
from ..variants import COMMANDS, LEGACY

BOUND_MS = 300
#: The holder lets go after this long whatever happens, so a write that waits the lock
#: out (no bound) ends, and fails the test, instead of hanging it.
MAX_HOLD_S = 6.0
ORDER = {"customer_id": 1, "lines": [{"product_id": 1, "quantity": 2}]}


@pytest.fixture(params=[COMMANDS, LEGACY], ids=["commands", "legacy"])
def app_variant(request):
    return request.param.with_settings(CQRS_WRITE_TIMEOUT_MS=BOUND_MS)


@pytest.fixture
def shop(db_session):
    """Customer 1; product 1 (stock 5)."""
    CustomerFactory(email="ann@example.com")
    ProductFactory(sku="MUG", stock__quantity=5)
    db_session.commit()


@contextmanager
def stock_locked(backend: str) -> Iterator[None]:
    """Another connection holds ``stock`` until the block ends (or ``MAX_HOLD_S``)."""
    acquired, release = threading.Event(), threading.Event()
    url = db.engine.url

    def hold() -> None:
        if backend == "postgresql":
            holder = create_engine(url)
            with holder.connect() as connection:
                connection.execute(text("LOCK TABLE stock IN ACCESS EXCLUSIVE MODE"))
                acquired.set()
                release.wait(MAX_HOLD_S)
                connection.rollback()
            holder.dispose()
        else:
            connection = sqlite3.connect(str(make_url(url).database), isolation_level=None)
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("UPDATE stock SET quantity = quantity WHERE 0")  # the write lock
            acquired.set()
            release.wait(MAX_HOLD_S)
            connection.execute("ROLLBACK")
            connection.close()

    holder_thread = threading.Thread(target=hold, daemon=True)
    holder_thread.start()
    assert acquired.wait(30), "could not take the lock"
    try:
        yield
    finally:
        release.set()
        holder_thread.join(30)


def timeouts_counted() -> float:
    sample = REGISTRY.get_sample_value(
        "cqrs_write_timeouts_total", {"endpoint": "orders.place_order"}
    )
    return sample or 0.0


def test_a_write_waiting_for_a_lock_gives_up_at_the_bound_with_a_503(
    client, db_session, shop, backend, app_variant
):
    before, counted = shop_snapshot(db_session), timeouts_counted()
    db_session.rollback()  # the snapshot's read transaction would hold nothing, but end it
    with stock_locked(backend):
        started = time.monotonic()
        response = client.post("/api/orders", json=ORDER)
        waited = time.monotonic() - started

    assert_error(response, 503, "write_timeout")
    assert int(response.headers["Retry-After"]) >= 1
    assert response.headers["X-CQRS-Served-By"] == app_variant.write_stage
    assert BOUND_MS / 1000 * 0.5 <= waited < 3.0, waited  # the bound, not the lock's 6 s
    assert shop_snapshot(db_session) == before  # nothing of the order was written
    assert timeouts_counted() == counted + 1

    retried = client.post("/api/orders", json=ORDER)
    assert retried.status_code == 201
    db_session.expire_all()
    assert db_session.scalar(select(func.count()).select_from(Order)) == 1


def test_a_timed_out_write_is_not_remembered_under_its_idempotency_key(
    client, db_session, shop, backend
):
    headers = {"Idempotency-Key": "locked-out"}
    with stock_locked(backend):
        timed_out = client.post("/api/orders", json=ORDER, headers=headers)
    retried = client.post("/api/orders", json=ORDER, headers=headers)

    assert timed_out.status_code == 503
    assert (retried.status_code, "Idempotent-Replayed" in retried.headers) == (201, False)
    db_session.expire_all()
    assert db_session.scalar(select(func.count()).select_from(Order)) == 1
