"""Lock waits: a table the write path needs is locked by someone else for a while.

Clients place orders on the command path while another connection holds the ``stock``
table (PostgreSQL: ``LOCK TABLE stock IN ACCESS EXCLUSIVE MODE``; SQLite: the database's
write lock, taken by a transaction writing ``stock``) for ``lock_seconds``. The goal is a
bounded wait: a write that cannot get its lock within ``WAIT_BOUND_MS`` answers 503 with
``Retry-After`` instead of hanging on. Today writes wait the lock out; this scenario
measures how long, and what they answer.
"""

from __future__ import annotations

import threading
import time
from functools import partial

from .context import ScenarioContext
from .database import missing_orders
from .http import Reply, post
from .load import clients
from .locks import table_locked
from .results import ScenarioResult
from .servers import running
from .shop_cli import verify
from .timeline import Timeline, max_ms, statuses

LOCKED_TABLE = "stock"
#: The wait a write may spend on a lock before it should give up with a 503.
WAIT_BOUND_MS = 2000.0
WRITERS = 3


def run(ctx: ScenarioContext) -> ScenarioResult:
    result = ScenarioResult("lock-wait", ctx.backend)
    timeline = Timeline()
    env = {"FLASK_CQRS_DEFAULT_WRITE_STAGE": "command"}
    with ctx.template.copy("lock-wait") as url:
        with running(ctx.server("lock-wait", url, env=env)) as server:

            def writer(index: int, stop: threading.Event) -> None:
                rng = ctx.rng(f"lock-wait-writer-{index}")
                while not stop.is_set():
                    body = {
                        "customer_id": rng.choice(ctx.facts.customer_ids),
                        "lines": [
                            {"product_id": rng.choice(ctx.facts.bulk_product_ids), "quantity": 1}
                        ],
                    }
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


def _is_retry_later(reply: Reply) -> bool:
    return reply.status == 503 and bool(reply.retry_after)
