"""Read-model failure: the catalog's read model disappears, then (PostgreSQL) is locked.

``products.list_products`` is forced to ``live`` (100%), writes go through their commands,
and clients keep reading the catalog, placing orders and reading something unrelated
(a customer) while the ``catalog_view`` table is renamed away for ``outage_seconds``. The
promise: reads fall back to legacy (200, ``X-CQRS-Served-By: legacy``) and a broken read
model never fails a write. On PostgreSQL the table is then held under ``LOCK TABLE ... IN
ACCESS EXCLUSIVE MODE`` for ``lock_seconds``: a locked read model must not stall a write
either, nor an unrelated read. SQLite has no table locks (the lock-wait scenario holds its
database lock instead), so there that part is not run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from functools import partial

from sqlalchemy import select

from .context import ScenarioContext
from .database import connected, missing_orders, toolkit_table
from .http import get, post
from .load import clients
from .locks import Window, is_postgres, renamed_away, table_locked
from .results import ScenarioResult
from .servers import ShopServer, running
from .shop_cli import set_flag, verify
from .timeline import Timeline, max_ms, served_by, statuses

CATALOG = "products.list_products"
READ_MODEL_TABLE = "catalog_view"
#: A write slower than this while the read model is locked counts as stalled.
STALL_LIMIT_MS = 2000.0
#: An unrelated read slower than this counts as paying for the read model's trouble.
UNRELATED_READ_LIMIT_MS = 2000.0
WRITERS = 2
CATALOG_READERS = 2


def run(ctx: ScenarioContext) -> ScenarioResult:
    result = ScenarioResult("readmodel-failure", ctx.backend)
    timeline = Timeline()
    locked: Window | None = None
    with ctx.template.copy("readmodel-failure") as url:
        reason = "stress: read-model failure"
        forced = set_flag(url, [CATALOG], "live", reason, force=True, percent=100)
        if forced.exit_code != 0:
            raise RuntimeError(f"could not force {CATALOG} live: {forced.stderr[-500:]}")
        env = {"FLASK_CQRS_DEFAULT_WRITE_STAGE": "command"}
        with running(ctx.server("readmodel-failure", url, env=env)) as server:
            with clients(WRITERS + CATALOG_READERS + 1, _client(ctx, server, timeline), "client"):
                time.sleep(ctx.sizes.calm_seconds)
                with renamed_away(url, READ_MODEL_TABLE) as outage:
                    time.sleep(ctx.sizes.outage_seconds)
                recovery = Window(start=time.monotonic())
                time.sleep(ctx.sizes.calm_seconds * 2)
                recovery.end = time.monotonic()
                if is_postgres(url):
                    with table_locked(url, READ_MODEL_TABLE, ctx.sizes.lock_seconds) as locked:
                        pass  # the lock is held for lock_seconds while the clients go on
                    time.sleep(ctx.sizes.calm_seconds)
            lost = missing_orders(url, timeline.created_ids())
        stage_after = _stage_of(url, CATALOG)
        outcome = verify(url)
    result.add_tally(timeline.tally)
    result.counts.acknowledged_lost = len(lost)
    result.counts.drift_after = outcome.drifting_rows
    windows = {"outage": outage, "recovery": recovery, **({"locked": locked} if locked else {})}
    result.details = {
        "phases": {name: _phase(timeline, window) for name, window in windows.items()},
        "catalog_stage_after": stage_after,
        "verify": outcome.describe(),
    }
    _judge_outage(result, timeline, outage)
    if locked is not None:
        _judge_lock(result, timeline, locked)
    _judge_unrelated_reads(result, timeline, [w for w in (outage, locked) if w is not None])
    _judge_recovery(result, timeline, recovery, outcome.describe(), outcome.clean, lost)
    return result


def _client(
    ctx: ScenarioContext, server: ShopServer, timeline: Timeline
) -> Callable[[int, threading.Event], None]:
    def loop(index: int, stop: threading.Event) -> None:
        rng = ctx.rng(f"readmodel-client-{index}")
        while not stop.is_set():
            if index < WRITERS:
                body = {
                    "customer_id": rng.choice(ctx.facts.customer_ids),
                    "lines": [_one_unit_of(rng.choice(ctx.facts.bulk_product_ids))],
                }
                timeline.timed("write", partial(post, server.base_url, "/api/orders", body))
            elif index < WRITERS + CATALOG_READERS:
                path = f"/api/products?sort={rng.choice(('name', 'price', 'popularity'))}"
                timeline.timed("catalog read", partial(get, server.base_url, path))
            else:
                path = f"/api/customers/{rng.choice(ctx.facts.customer_ids)}"
                timeline.timed("unrelated read", partial(get, server.base_url, path))
            stop.wait(0.02)

    return loop


def _phase(timeline: Timeline, window: Window) -> dict[str, object]:
    summary: dict[str, object] = {"seconds": round(window.end - window.start, 1)}
    for kind in ("write", "catalog read", "unrelated read"):
        entries = timeline.during(kind, window)
        summary[kind] = {
            "requests": len(entries),
            "statuses": statuses(entries),
            "served_by": served_by(entries),
            "max_ms": max_ms(entries),
        }
    return summary


def _stage_of(url: str, endpoint: str) -> str:
    flags = toolkit_table("cqrs_flags")
    with connected(url) as engine, engine.connect() as conn:
        stage = conn.execute(select(flags.c.stage).where(flags.c.endpoint == endpoint)).scalar()
    return str(stage)


def _judge_outage(result: ScenarioResult, timeline: Timeline, outage: Window) -> None:
    reads = timeline.during("catalog read", outage)
    bad_reads = [e for e in reads if e.reply.status != 200]
    inside = [e for e in reads if outage.contains(e.started, e.finished)]
    not_legacy = [e for e in inside if e.reply.served_by != "legacy"]
    result.judge(
        "readmodel-failure.reads-fall-back-to-legacy",
        bool(inside) and not bad_reads and not not_legacy,
        f"{len(reads)} catalog reads during the outage: statuses {statuses(reads)}, served by "
        f"{served_by(inside)} (of the {len(inside)} wholly inside it)",
    )
    writes = timeline.during("write", outage)
    failed = [e for e in writes if not 200 <= e.reply.status < 300]
    example = f"; e.g. {failed[0].reply.status} {failed[0].reply.body[:160]!r}" if failed else ""
    result.judge(
        "readmodel-failure.writes-unaffected",
        bool(writes) and not failed,
        f"{len(writes)} command-path writes while catalog_view was gone: statuses "
        f"{statuses(writes)}{example}",
    )


def _judge_lock(result: ScenarioResult, timeline: Timeline, locked: Window) -> None:
    writes = timeline.during("write", locked)
    stalled = [e for e in writes if e.reply.ms > STALL_LIMIT_MS or not 200 <= e.reply.status < 300]
    result.judge(
        "readmodel-failure.locked-read-model-never-stalls-writes",
        bool(writes) and not stalled,
        f"{len(writes)} writes while catalog_view was locked for "
        f"{locked.end - locked.start:.1f} s: statuses {statuses(writes)}, longest "
        f"{max_ms(writes):.0f} ms (limit {STALL_LIMIT_MS:.0f} ms); catalog reads meanwhile "
        f"{statuses(timeline.during('catalog read', locked))}, longest "
        f"{max_ms(timeline.during('catalog read', locked)):.0f} ms",
    )


def _one_unit_of(product_id: int) -> dict[str, int]:
    return {"product_id": product_id, "quantity": 1}


def _judge_unrelated_reads(
    result: ScenarioResult, timeline: Timeline, windows: list[Window]
) -> None:
    unrelated = [e for w in windows for e in timeline.during("unrelated read", w)]
    slow = [e for e in unrelated if e.reply.status != 200 or e.reply.ms > UNRELATED_READ_LIMIT_MS]
    result.judge(
        "readmodel-failure.unrelated-reads-unaffected",
        bool(unrelated) and not slow,
        f"{len(unrelated)} unrelated reads (GET /api/customers/<id>) while the read model was "
        f"gone or locked: statuses {statuses(unrelated)}, longest {max_ms(unrelated):.0f} ms "
        f"(limit {UNRELATED_READ_LIMIT_MS:.0f} ms)",
    )


def _judge_recovery(
    result: ScenarioResult,
    timeline: Timeline,
    recovery: Window,
    verify_text: str,
    verify_clean: bool,
    lost: list[int],
) -> None:
    writes = [e for e in timeline.during("write", recovery) if e.started >= recovery.start]
    reads = [e for e in timeline.during("catalog read", recovery) if e.started >= recovery.start]
    recovered = (
        bool(writes and reads)
        and all(e.reply.status == 201 for e in writes)
        and all(e.reply.status == 200 for e in reads)
    )
    result.judge(
        "readmodel-failure.recovers-when-the-table-is-back",
        recovered and verify_clean,
        f"once the table was back: writes {statuses(writes)}, catalog reads {statuses(reads)} "
        f"served by {served_by(reads)}; {verify_text}",
    )
    result.judge(
        "readmodel-failure.acknowledged-writes-kept",
        not lost,
        f"{len(lost)} acknowledged orders missing from the database"
        + (f": {lost[:5]}" if lost else ""),
    )
