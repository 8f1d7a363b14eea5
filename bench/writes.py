"""The write requests measured: place an order, pay it, cancel it.

Both sides get the same bodies (same customer, products and quantities for the n-th pair),
and each side pays and cancels only the orders it placed itself, so every status change
goes through the path that created the order. Products are restocked on the legacy server
(untimed, between pairs) before an order could run out, so no order fails for stock.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from .client import Reply, post
from .database import DataFacts
from .measure import Budget, Comparison, Side, run_ab

POOL_SIZE = 200  # products orders are drawn from
RESTOCK = 1_000  # units added to a pool product whenever its headroom runs out
MAX_QUANTITY = 3
LINES = (1, 4)


class OrderTraffic:
    def __init__(self, facts: DataFacts, legacy_port: int, rng: random.Random) -> None:
        if not facts.in_stock_product_ids or not facts.customer_ids:
            raise RuntimeError("no product in stock or no customer: cannot place orders")
        self._rng = rng
        self._customers = facts.customer_ids
        pool_size = min(POOL_SIZE, len(facts.in_stock_product_ids))
        self._pool = rng.sample(facts.in_stock_product_ids, pool_size)
        self._legacy_port = legacy_port
        self._bodies: list[dict[str, Any]] = []
        # Units this run has taken from each product since its last restock.
        self._taken = dict.fromkeys(self._pool, RESTOCK)  # "exhausted": restock first
        self.placed: dict[str, list[int]] = {"legacy": [], "new": []}
        self.paid: dict[str, list[int]] = {"legacy": [], "new": []}

    @property
    def pool_size(self) -> int:
        return len(self._pool)

    def body(self, index: int) -> dict[str, Any]:
        while len(self._bodies) <= index:
            self._bodies.append(self._new_body())
        return self._bodies[index]

    def _new_body(self) -> dict[str, Any]:
        rng = self._rng
        products = rng.sample(self._pool, min(len(self._pool), rng.randint(*LINES)))
        lines = [{"product_id": p, "quantity": rng.randint(1, MAX_QUANTITY)} for p in products]
        for line in lines:
            # Each body is sent once per side.
            self._reserve(line["product_id"], 2 * line["quantity"])
        return {"customer_id": rng.choice(self._customers), "lines": lines}

    def _reserve(self, product_id: int, units: int) -> None:
        if self._taken[product_id] + units > RESTOCK:
            reply = post(
                self._legacy_port, f"/api/products/{product_id}/restock", {"quantity": RESTOCK}
            )
            if reply.status != 200:
                raise RuntimeError(f"restocking product {product_id} failed: {reply.body!r}")
            self._taken[product_id] = 0
        self._taken[product_id] += units

    def place(self, index: int, side: Side) -> Reply:
        reply = post(side.server.port, "/api/orders", self.body(index))
        if reply.status == 201:
            self.placed[side.label].append(int(reply.json()["id"]))
        return reply

    def pay(self, index: int, side: Side) -> Reply:
        order_id = self.placed[side.label][index]
        reply = post(side.server.port, f"/api/orders/{order_id}/pay")
        if reply.status == 200:
            self.paid[side.label].append(order_id)
        return reply

    def cancel(self, index: int, side: Side) -> Reply:
        return post(side.server.port, f"/api/orders/{self.paid[side.label][index]}/cancel")


def measure_writes(
    facts: DataFacts,
    legacy: Side,
    new: Side,
    budget: Budget,
    rng: random.Random,
    log: Callable[[Comparison], None],
) -> list[Comparison]:
    traffic = OrderTraffic(facts, legacy.server.port, rng)
    # Build every body (and restock) before timing anything.
    for index in range(budget.warmup + budget.samples):
        traffic.body(index)
    results = []
    place = run_ab(
        "write:orders.place_order",
        f"random customer, {LINES[0]}-{LINES[1]} in-stock products of {traffic.pool_size}, "
        f"quantity 1-{MAX_QUANTITY}",
        legacy,
        new,
        traffic.place,
        budget,
        ok_status=201,
        compare_bodies=False,
    )
    log(place)
    results.append(place)
    pay = run_ab(
        "write:orders.pay_order",
        "an order this side placed (placed -> paid)",
        legacy,
        new,
        traffic.pay,
        budget,
        ok_status=200,
        compare_bodies=False,
        available=min(len(traffic.placed["legacy"]), len(traffic.placed["new"])),
    )
    log(pay)
    results.append(pay)
    cancel = run_ab(
        "write:orders.cancel_order",
        "an order this side paid (paid -> cancelled, stock returned)",
        legacy,
        new,
        traffic.cancel,
        budget,
        ok_status=200,
        compare_bodies=False,
        available=min(len(traffic.paid["legacy"]), len(traffic.paid["new"])),
    )
    log(cancel)
    results.append(cancel)
    return results
