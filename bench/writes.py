"""The write requests measured: place an order (three ways), pay it, cancel it.

The legacy side of every write record is the shop before the migration: the legacy path
on a copy of the database without change capture (the ``plain`` server). Against it:

- ``write:orders.place_order``: the command path with the shop's hand-written projections
  (the hot path it chose to keep);
- ``write:orders.place_order-refresh``: the command path with no hand-written projection,
  every read model kept by refresh-by-key before the commit;
- ``overhead:capture``: the legacy path on the migrated database with the refresh
  deferred (``CQRS_REFRESH_IN_WRITES=false``): the capture triggers record the keys the
  write changed and nothing more, what any writer outside the app pays;
- ``overhead:capture+refresh``: the legacy path on the migrated database as the shop runs
  it: the triggers, then refresh-by-key recomputing every changed key before the commit;
- ``write:orders.pay_order`` / ``cancel_order``: the command path (no target).

Both sides get the same bodies (same customer, products and quantities for the n-th
pair); each place record has bodies of its own. Each side pays and cancels only the
orders it placed itself, so every status change goes through the path that created the
order. The products ordered were stocked for any run before the backfill
(:func:`bench.database.stock_order_pool`): nothing is restocked while measuring.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from .client import Reply, post
from .database import DataFacts
from .measure import Act, Budget, Comparison, Side, run_ab

MAX_QUANTITY = 3
LINES = (1, 4)
PLACE_RECORDS = (
    "write:orders.place_order",
    "write:orders.place_order-refresh",
    "overhead:capture",
    "overhead:capture+refresh",
)


def order_body(rng: random.Random, facts: DataFacts) -> dict[str, Any]:
    """A random order: a random customer, 1-4 products of the pool, quantity 1-3 each."""
    pool = facts.order_pool
    products = rng.sample(pool, min(len(pool), rng.randint(*LINES)))
    lines = [{"product_id": p, "quantity": rng.randint(1, MAX_QUANTITY)} for p in products]
    return {"customer_id": rng.choice(facts.customer_ids), "lines": lines}


def order_params(facts: DataFacts) -> str:
    return (
        f"random customer, {LINES[0]}-{LINES[1]} in-stock products of "
        f"{len(facts.order_pool)}, quantity 1-{MAX_QUANTITY}"
    )


class OrderTraffic:
    def __init__(self, facts: DataFacts, rng: random.Random) -> None:
        if not facts.order_pool or not facts.customer_ids:
            raise RuntimeError("no product to order or no customer: cannot place orders")
        self._facts = facts
        self._rng = rng
        self._bodies: list[dict[str, Any]] = []
        # By server: the orders it placed, and of those the ones it paid.
        self.placed: dict[str, list[int]] = defaultdict(list)
        self.paid: dict[str, list[int]] = defaultdict(list)

    def body(self, index: int) -> dict[str, Any]:
        while len(self._bodies) <= index:
            self._bodies.append(order_body(self._rng, self._facts))
        return self._bodies[index]

    def placing(self, first: int) -> Act:
        """Place the bodies from index ``first`` on: one range per place record."""

        def place(index: int, side: Side) -> Reply:
            reply = post(side.server.port, "/api/orders", self.body(first + index))
            if reply.status == 201:
                self.placed[side.server.label].append(int(reply.json()["id"]))
            return reply

        return place

    def pay(self, index: int, side: Side) -> Reply:
        order_id = self.placed[side.server.label][index]
        reply = post(side.server.port, f"/api/orders/{order_id}/pay")
        if reply.status == 200:
            self.paid[side.server.label].append(order_id)
        return reply

    def cancel(self, index: int, side: Side) -> Reply:
        order_id = self.paid[side.server.label][index]
        return post(side.server.port, f"/api/orders/{order_id}/cancel")

    def available(self, kind: dict[str, list[int]], *sides: Side) -> int:
        return min(len(kind[side.server.label]) for side in sides)


def measure_writes(
    facts: DataFacts,
    plain: Side,
    candidates: dict[str, Side],
    budget: Budget,
    rng: random.Random,
    log: Callable[[Comparison], None],
) -> list[Comparison]:
    """``plain`` against ``candidates["write:orders.place_order"]`` and the other place
    records' sides (see the module); pay and cancel against the first one."""
    traffic = OrderTraffic(facts, rng)
    per_record = budget.warmup + budget.samples
    results = []
    for number, name in enumerate(PLACE_RECORDS):
        place = run_ab(
            name,
            order_params(facts),
            plain,
            candidates[name],
            traffic.placing(number * per_record),
            budget,
            ok_status=201,
            compare_bodies=False,
        )
        log(place)
        results.append(place)
    new = candidates["write:orders.place_order"]
    pay = run_ab(
        "write:orders.pay_order",
        "an order this side placed (placed -> paid)",
        plain,
        new,
        traffic.pay,
        budget,
        ok_status=200,
        compare_bodies=False,
        available=traffic.available(traffic.placed, plain, new),
    )
    log(pay)
    results.append(pay)
    cancel = run_ab(
        "write:orders.cancel_order",
        "an order this side paid (paid -> cancelled, stock returned)",
        plain,
        new,
        traffic.cancel,
        budget,
        ok_status=200,
        compare_bodies=False,
        available=traffic.available(traffic.paid, plain, new),
    )
    log(cancel)
    results.append(cancel)
    return results
