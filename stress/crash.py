"""Crash: writes while workers die, then the whole server dies, then the books are checked.

Clients place, pay, cancel and ship orders on the command path for ``crash_seconds``
(longer, until ``crash_min_orders`` were acknowledged) while a killer SIGKILLs a random
gunicorn worker about every ``crash_kill_every`` seconds (the master starts a new one). Then
master and workers are SIGKILLed together and the server is started again on the same
database. Every write a client got a 2xx for must be there, in the state of its last
acknowledged transition (a transition that got no answer may or may not have happened: the
order is then allowed either state, and left alone). The outbox must hold exactly the events
of what committed, stock must add up, and ``flask cqrs verify`` must be clean.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import Engine, func, select

from .context import ScenarioContext
from .database import BULK_STOCK, connected, toolkit_table
from .http import get, post
from .load import clients
from .results import ScenarioResult
from .servers import ShopServer, running
from .shop_cli import verify
from .tally import Tally

#: Which statuses may follow which (the shop's rules), the URL verb and the event of each.
NEXT = {"placed": ("paid", "cancelled"), "paid": ("shipped", "cancelled")}
VERB = {"paid": "pay", "shipped": "ship", "cancelled": "cancel"}
EVENT = {
    "placed": "OrderPlaced",
    "paid": "OrderPaid",
    "shipped": "OrderShipped",
    "cancelled": "OrderCancelled",
}
#: A request to a worker that is killed gets no answer at once; this bounds the others.
CLIENT_TIMEOUT = 30.0


@dataclass
class TrackedOrder:
    order_id: int
    lines: list[tuple[int, int]]  # (product id, quantity)
    acked: str = "placed"  # the last status a client got a 2xx for
    in_doubt: str | None = None  # a transition sent that got no answer


@dataclass
class Ledger:
    """What the clients were told, shared by every client thread."""

    orders: dict[int, TrackedOrder] = field(default_factory=dict)
    acknowledged: Counter[str] = field(default_factory=Counter)  # by event type
    in_doubt: Counter[str] = field(default_factory=Counter)
    refused: list[str] = field(default_factory=list)  # valid writes answered 4xx
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ack(self, event: str, order: TrackedOrder | None = None) -> None:
        with self.lock:
            self.acknowledged[event] += 1
            if order is not None:
                self.orders[order.order_id] = order

    def doubt(self, event: str) -> None:
        with self.lock:
            self.in_doubt[event] += 1

    def refuse(self, what: str) -> None:
        with self.lock:
            self.refused.append(what)


def run(ctx: ScenarioContext) -> ScenarioResult:
    result = ScenarioResult("crash", ctx.backend)
    tally = Tally()
    ledger = Ledger()
    kills: list[int] = []
    env = {"FLASK_CQRS_DEFAULT_WRITE_STAGE": "command"}
    with ctx.template.copy("crash") as url, connected(url) as engine:
        first_position = _last_outbox_position(engine)
        with running(ctx.server("crash", url, env=env)) as server:
            attacked = _attack(ctx, server, ledger, tally, kills)
            ctx.say(f"  {len(kills)} workers killed; killing master and workers, restarting")
            server.kill()
            server.start()
            api_missing = _read_back(server, ledger, tally)
        # The server is stopped: what the database holds now is final.
        books = _books(engine, ctx.facts.last_seeded_order_id, first_position)
        outcome = verify(url)
    result.add_tally(tally)
    result.counts.kills = len(kills)
    result.counts.drift_after = outcome.drifting_rows
    _judge(result, ledger, books, api_missing, outcome.describe(), outcome.clean, tally)
    result.details = {
        "seconds_under_attack": round(attacked, 1),
        "clients": ctx.sizes.crash_clients,
        "acknowledged_by_event": dict(ledger.acknowledged),
        "in_doubt_by_event": dict(ledger.in_doubt),
        "outbox_by_event": dict(books.outbox_counts),
        "orders_acknowledged": len(ledger.orders),
        "orders_in_database": len(books.statuses),
        "served_by": dict(tally.served_by),
        "verify": outcome.describe(),
    }
    return result


def _attack(
    ctx: ScenarioContext, server: ShopServer, ledger: Ledger, tally: Tally, kills: list[int]
) -> float:
    """Write and kill until ``crash_seconds`` passed and ``crash_min_orders`` orders were
    acknowledged (or four times ``crash_seconds``); returns the seconds it took."""
    sizes = ctx.sizes

    def client(index: int, stop: threading.Event) -> None:
        rng = ctx.rng(f"crash-client-{index}")
        mine: list[TrackedOrder] = []
        while not stop.is_set():
            movable = [o for o in mine if o.in_doubt is None and o.acked in NEXT]
            if movable and rng.random() < 0.6:
                order = rng.choice(movable)
                target = rng.choice(NEXT[order.acked])
                path = f"/api/orders/{order.order_id}/{VERB[target]}"
                reply = post(server.base_url, path, timeout=CLIENT_TIMEOUT)
                tally.add(f"POST {path}", reply)
                if 200 <= reply.status < 300:
                    order.acked = target
                    ledger.ack(EVENT[target])
                elif not reply.answered:
                    order.in_doubt = target
                    ledger.doubt(EVENT[target])
                else:
                    ledger.refuse(f"POST {path} -> {reply.status} {reply.body[:120]!r}")
                continue
            products = rng.sample(ctx.facts.bulk_product_ids, rng.randint(1, 2))
            lines = [(p, rng.randint(1, 3)) for p in sorted(products)]
            body = {
                "customer_id": rng.choice(ctx.facts.customer_ids),
                "lines": [{"product_id": p, "quantity": q} for p, q in lines],
            }
            reply = post(server.base_url, "/api/orders", body, timeout=CLIENT_TIMEOUT)
            tally.add("POST /api/orders", reply)
            created = reply.json()
            if reply.status == 201 and isinstance(created, dict):
                order = TrackedOrder(int(created["id"]), lines)
                mine.append(order)
                ledger.ack("OrderPlaced", order)
            elif not reply.answered:
                ledger.doubt("OrderPlaced")
            else:
                ledger.refuse(f"POST /api/orders -> {reply.status} {reply.body[:120]!r}")

    def killer(_index: int, stop: threading.Event) -> None:
        rng = ctx.rng("crash-killer")
        while not stop.wait(sizes.crash_kill_every * rng.uniform(0.7, 1.3)):
            workers = server.worker_pids()
            if not workers:
                continue
            victim = rng.choice(workers)
            try:
                os.kill(victim, signal.SIGKILL)
            except ProcessLookupError:
                continue
            kills.append(victim)

    started = time.monotonic()
    with clients(sizes.crash_clients, client, "writer"), clients(1, killer, "killer"):
        time.sleep(sizes.crash_seconds)
        while (
            len(ledger.orders) < sizes.crash_min_orders
            and time.monotonic() - started < 4 * sizes.crash_seconds
        ):
            time.sleep(0.1)
    return time.monotonic() - started


def _read_back(server: ShopServer, ledger: Ledger, tally: Tally) -> list[str]:
    """Every acknowledged order, through the restarted server: it must be there."""
    missing = []
    for order in list(ledger.orders.values()):
        reply = get(server.base_url, f"/api/orders/{order.order_id}")
        tally.add("GET /api/orders/<id>", reply)
        shown = reply.json()
        allowed = {order.acked, order.in_doubt}
        if reply.status != 200 or not isinstance(shown, dict) or shown.get("status") not in allowed:
            missing.append(f"order {order.order_id}: {reply.status} {reply.body[:120]!r}")
    return missing


@dataclass(frozen=True)
class Books:
    """The database after the crash: orders made during the run, events, stock."""

    statuses: dict[int, str]
    expected_events: set[tuple[str, str]]  # (event type, order id) the committed state implies
    outbox_events: list[tuple[str, str]]
    outbox_counts: Counter[str]
    stock_problems: list[str]


def _books(engine: Engine, last_seeded_order_id: int, first_position: int) -> Books:
    outbox = toolkit_table("cqrs_outbox")
    from legacy_app.models import Order, OrderLine, Stock

    with engine.connect() as conn:
        orders = conn.execute(
            select(
                Order.id, Order.status, Order.paid_at, Order.shipped_at, Order.cancelled_at
            ).where(Order.id > last_seeded_order_id)
        ).all()
        events = conn.execute(
            select(outbox.c.event_type, outbox.c.aggregate_id).where(
                outbox.c.position > first_position
            )
        ).all()
        sold = dict(
            conn.execute(
                select(OrderLine.product_id, func.sum(OrderLine.quantity))
                .join(Order, Order.id == OrderLine.order_id)
                .where(Order.id > last_seeded_order_id, Order.status != "cancelled")
                .group_by(OrderLine.product_id)
            ).all()
        )
        stock = dict(conn.execute(select(Stock.product_id, Stock.quantity)).all())
    expected: set[tuple[str, str]] = set()
    for order_id, _status, paid_at, shipped_at, cancelled_at in orders:
        key = str(order_id)
        expected.add(("OrderPlaced", key))
        for stamp, event in ((paid_at, "OrderPaid"), (shipped_at, "OrderShipped"),
                             (cancelled_at, "OrderCancelled")):  # fmt: skip
            if stamp is not None:
                expected.add((event, key))
    stock_problems = [
        f"product {product_id}: stock {stock.get(product_id)}, expected {BULK_STOCK - int(units)}"
        for product_id, units in sold.items()
        if stock.get(product_id) != BULK_STOCK - int(units)
    ]
    outbox_events = [(str(t), str(a)) for t, a in events]
    return Books(
        {int(row[0]): str(row[1]) for row in orders},
        expected,
        outbox_events,
        Counter(t for t, _a in outbox_events),
        stock_problems,
    )


def _last_outbox_position(engine: Engine) -> int:
    outbox = toolkit_table("cqrs_outbox")

    with engine.connect() as conn:
        return int(conn.execute(select(func.coalesce(func.max(outbox.c.position), 0))).scalar_one())


def _judge(
    result: ScenarioResult,
    ledger: Ledger,
    books: Books,
    api_missing: list[str],
    verify_text: str,
    verify_clean: bool,
    tally: Tally,
) -> None:
    lost = [o for o in ledger.orders.values() if o.order_id not in books.statuses]
    wrong_state = [
        f"order {o.order_id}: {books.statuses[o.order_id]}, acknowledged {o.acked}"
        + (f" (or {o.in_doubt}, unanswered)" if o.in_doubt else "")
        for o in ledger.orders.values()
        if o.order_id in books.statuses and books.statuses[o.order_id] not in {o.acked, o.in_doubt}
    ]
    result.counts.acknowledged_lost = len(lost) + len(wrong_state)
    result.judge(
        "crash.no-acknowledged-write-lost",
        not lost and not api_missing,
        f"{len(ledger.orders)} acknowledged orders: {len(lost)} missing from the database, "
        f"{len(api_missing)} not served after the restart"
        + (f" ({'; '.join(api_missing[:3])})" if api_missing else ""),
    )
    result.judge(
        "crash.last-acknowledged-state-kept",
        not wrong_state,
        "; ".join(wrong_state[:5])
        or f"every order is in its last acknowledged state "
        f"({sum(o.in_doubt is not None for o in ledger.orders.values())} with an unanswered "
        "transition, in one of the two states allowed)",
    )
    outbox = set(books.outbox_events)
    duplicated = len(books.outbox_events) - len(outbox)
    missing_events = books.expected_events - outbox
    extra_events = outbox - books.expected_events
    bounds = []
    for event in EVENT.values():
        low, high = ledger.acknowledged[event], ledger.acknowledged[event] + ledger.in_doubt[event]
        if not low <= books.outbox_counts[event] <= high:
            bounds.append(f"{event}: {books.outbox_counts[event]} not in [{low}, {high}]")
    result.judge(
        "crash.outbox-matches-committed-changes",
        not (missing_events or extra_events or duplicated or bounds),
        f"{len(books.outbox_events)} events for {len(books.expected_events)} committed "
        f"changes: {len(missing_events)} missing, {len(extra_events)} without a change, "
        f"{duplicated} duplicated; by type vs acknowledged (+unanswered): "
        + ("; ".join(bounds) or "within bounds"),
    )
    result.judge(
        "crash.stock-adds-up",
        not books.stock_problems,
        "; ".join(books.stock_problems[:5])
        or "every product's stock = its start - units of the run's non-cancelled orders",
    )
    result.judge(
        "crash.no-5xx-and-no-refused-valid-write",
        tally.server_errors == 0 and not ledger.refused,
        f"{tally.server_errors} 5xx, {len(ledger.refused)} valid writes refused"
        + (f" ({'; '.join(ledger.refused[:3])})" if ledger.refused else "")
        + (f"; 5xx e.g. {tally.examples[0]}" if tally.examples else ""),
    )
    result.judge("crash.verify-clean-after-restart", verify_clean, verify_text)
