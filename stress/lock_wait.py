"""Lock waits: a table the write path needs is locked by someone else for a while.

Clients place orders on the command path while another connection holds the ``stock``
table (PostgreSQL: ``LOCK TABLE stock IN ACCESS EXCLUSIVE MODE``; SQLite: the database's
write lock, taken by a transaction writing ``stock``) for ``lock_seconds``. The promise is
a bounded wait: the server runs with ``CQRS_WRITE_TIMEOUT_MS`` at ``WRITE_TIMEOUT_MS``, so
a write that cannot get its lock gives up there and answers 503 with ``Retry-After``; the
scenario measures how long each write waited (the bound it is judged by, ``WAIT_BOUND_MS``,
leaves room for answering on a loaded machine) and what it answered. Every worker serves a
few orders first: a worker's first requests are slow (its connections, its caches), which
is no lock wait and must not be judged as one.
"""

from __future__ import annotations

import random
import threading
import time
from functools import partial

from .context import ScenarioContext
from .database import missing_orders
from .http import Reply, post
from .load import clients
from .locks import table_locked
from .results import ScenarioResult
from .servers import WORKERS, running
from .shop_cli import verify
from .timeline import Timeline, max_ms, statuses

LOCKED_TABLE = "stock"
#: The server's CQRS_WRITE_TIMEOUT_MS: how long a write waits for a lock before it gives up.
WRITE_TIMEOUT_MS = 1000
#: How long a write may take, its wait included, before it should have answered 503.
WAIT_BOUND_MS = 2000.0
WRITERS = 3
#: Orders placed one after another before the clock starts: enough to reach every worker.
WARM_UP_ORDERS = 3 * WORKERS


def run(ctx: ScenarioContext) -> ScenarioResult:
    result = ScenarioResult("lock-wait", ctx.backend)
    timeline = Timeline()
    env = {
        "FLASK_CQRS_DEFAULT_WRITE_STAGE": "command",
        "FLASK_CQRS_WRITE_TIMEOUT_MS": str(WRITE_TIMEOUT_MS),
    }
    with ctx.template.copy("lock-wait") as url:
        with running(ctx.server("lock-wait", url, env=env)) as server:
            warm_up = ctx.rng("lock-wait-warm-up")
            for _ in range(WARM_UP_ORDERS):
                post(server.base_url, "/api/orders", _order(ctx, warm_up))

            def writer(index: int, stop: threading.Event) -> None:
                rng = ctx.rng(f"lock-wait-writer-{index}")
                while not stop.is_set():
                    body = _order(ctx, rng)
                    timeline.timed("write", partial(post, server.base_url, "/api/orders", body))
                    stop.wait(0.02)

            with clients(WRITERS, writer, "writer"):
                time.sleep(ctx.sizes.calm_seconds)
                with table_locked(url, LOCKED_TABLE, ctx.sizes.lock_seconds) as locked:
                    pass  # held for lock_seconds by another connection; the writers go on
                time.sleep(ctx.sizes.calm_seconds)
        lost = missing_orders(url, timeline.created_ids())
        outcome = verify(url)
    result.add_tally(timeline.tally)
    result.counts.acknowledged_lost = len(lost)
    result.counts.drift_after = outcome.drifting_rows
    during = timeline.during("write", locked)
    held_ms = (locked.end - locked.start) * 1000
    result.details = {
        "lock_held_ms": round(held_ms),
        "writes_during_lock": len(during),
        "statuses_during_lock": statuses(during),
        "longest_wait_ms": max_ms(during),
        "with_retry_after": sum(1 for e in during if e.reply.retry_after),
        "verify": outcome.describe(),
    }
    unbounded = [
        e
        for e in during
        if e.reply.ms > WAIT_BOUND_MS or not (e.reply.status < 300 or _is_retry_later(e.reply))
    ]
    result.judge(
        "lock-wait.bounded-wait-ends-in-503",
        bool(during) and not unbounded,
        f"{len(during)} writes while {LOCKED_TABLE} was locked for {held_ms / 1000:.1f} s: "
        f"statuses {statuses(during)}, longest wait {max_ms(during):.0f} ms (bound "
        f"{WAIT_BOUND_MS:.0f} ms, then 503 + Retry-After); {len(unbounded)} past the bound",
    )
    errors = [e for e in timeline.entries if e.reply.status >= 500 and not _is_retry_later(e.reply)]
    result.judge(
        "lock-wait.no-5xx-but-503-retry-after",
        not errors,
        f"{len(errors)} 5xx other than 503 + Retry-After of {len(timeline.entries)} writes"
        + (f"; e.g. {errors[0].reply.status} {errors[0].reply.body[:160]!r}" if errors else ""),
    )
    result.judge(
        "lock-wait.acknowledged-writes-kept",
        not lost,
        f"{len(lost)} acknowledged orders missing from the database",
    )
    result.judge("lock-wait.verify-clean-after", outcome.clean, outcome.describe())
    return result


def _order(ctx: ScenarioContext, rng: random.Random) -> dict[str, object]:
    """One unit of a bulk product (plenty in stock) for a random customer."""
    product_id = rng.choice(ctx.facts.bulk_product_ids)
    return {
        "customer_id": rng.choice(ctx.facts.customer_ids),
        "lines": [{"product_id": product_id, "quantity": 1}],
    }


def _is_retry_later(reply: Reply) -> bool:
    return reply.status == 503 and bool(reply.retry_after)
