"""Oversell: many buyers race for the last units of one product.

Per gunicorn worker kind (sync, gthread) and write path (legacy, command), on a fresh copy
of the shop (all four pairs in the full run, two covering both kinds and both paths in
``--quick``): each round makes a product with ``oversell_stock`` units, releases
``oversell_buyers`` threads at once, each POSTing one order of 1 unit. Exactly the stock
must be sold, the stock must end at 0, every other buyer must get a 409, nobody a 5xx; and
``flask cqrs verify`` must be clean after the command path's writes (legacy writes record no
events, so there it must *find* the drift they cause, and ``--repair`` must fix it).
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass

from sqlalchemy import func, select

from .context import ScenarioContext
from .database import connected
from .http import Reply, get, post
from .load import all_at_once
from .results import ScenarioResult
from .servers import ShopServer, running
from .shop_cli import verify
from .tally import Tally

#: What X-CQRS-Served-By says for each write stage.
SERVED_BY = {"legacy": "legacy", "command": "command"}


@dataclass
class Round:
    worker_class: str
    stage: str
    number: int
    product_id: int
    buyers: int
    stock: int
    created: int = 0
    refused: int = 0
    other: int = 0
    server_errors: int = 0
    wrong_path: int = 0
    stock_after: int | None = None
    #: The stock GET /api/products/<id> shows afterwards.
    api_stock: int | None = None
    units_in_orders: int = 0
    max_ms: float = 0.0

    @property
    def label(self) -> str:
        return f"{self.worker_class}/{self.stage} round {self.number}"

    def problems(self) -> list[str]:
        found = []
        if self.created != self.stock or self.units_in_orders != self.stock:
            found.append(
                f"{self.created} orders acknowledged, {self.units_in_orders} units in the "
                f"database, for {self.stock} in stock"
            )
        if self.stock_after != 0 or self.api_stock != 0:
            found.append(f"stock ended at {self.stock_after} (the API shows {self.api_stock})")
        if self.refused != self.buyers - self.stock:
            found.append(f"{self.refused} refused with 409, expected {self.buyers - self.stock}")
        return found


def run(ctx: ScenarioContext) -> ScenarioResult:
    result = ScenarioResult("oversell", ctx.backend)
    rounds: list[Round] = []
    verifies: dict[str, str] = {}
    verify_problems: list[str] = []
    truth_problems: list[str] = []
    for worker_class, stage in ctx.sizes.oversell_servers:
        label = f"oversell-{worker_class}-{stage}"
        tally = Tally()
        # The write stage from the environment, not a flag: a flag change reaches a
        # threaded worker's concurrent requests late (see docs/reliability.md), and this
        # scenario judges the write paths, not the flags.
        env = {"FLASK_CQRS_DEFAULT_WRITE_STAGE": stage}
        with ctx.template.copy(label) as url:
            spec = ctx.server(label, url, worker_class=worker_class, env=env)
            with running(spec) as server:
                played = [
                    _play_round(ctx, server, url, worker_class, stage, number, tally)
                    for number in range(1, ctx.sizes.oversell_rounds + 1)
                ]
            for done in played:
                ctx.say(
                    f"  {done.label}: {done.created} sold, {done.refused} refused, "
                    f"stock {done.stock_after}, {done.server_errors} 5xx"
                )
            rounds += played
            # Legacy writes record no events: the read models must be found drifting (and
            # verify --repair must fix them); after command writes they must agree as they are.
            stale = _stale_catalog_rows(url, [r.product_id for r in played])
            outcome = verify(url, repair=stage == "legacy")
        result.add_tally(tally)
        verifies[f"{worker_class}/{stage}"] = outcome.describe()
        if stage == "command":
            result.counts.drift_after += outcome.drifting_rows
            if not outcome.clean:
                verify_problems.append(f"{worker_class}: {outcome.describe()}")
        elif outcome.exit_code != 0 or (stale and outcome.drifting_rows == 0):
            truth_problems.append(
                f"{worker_class}: catalog rows stale for {stale} product(s); {outcome.describe()}"
            )
    result.details = {
        "rounds": [vars(r) for r in rounds],
        "verify": verifies,
        "buyers_per_round": ctx.sizes.oversell_buyers,
        "stock_per_round": ctx.sizes.oversell_stock,
    }
    _judge(result, rounds, verify_problems, truth_problems, verifies)
    return result


def _judge(
    result: ScenarioResult,
    rounds: list[Round],
    verify_problems: list[str],
    truth_problems: list[str],
    verifies: dict[str, str],
) -> None:
    oversold = [f"{r.label}: {'; '.join(r.problems())}" for r in rounds if r.problems()]
    result.judge(
        "oversell.exactly-stock-sold",
        not oversold,
        "; ".join(oversold)
        or f"{len(rounds)} rounds: each sold exactly its stock, ended at 0, refused the rest "
        "with 409",
    )
    errors = sum(r.server_errors + r.other for r in rounds)
    result.judge(
        "oversell.no-5xx",
        errors == 0,
        f"{errors} answers neither 201 nor 409 (5xx: {sum(r.server_errors for r in rounds)})",
    )
    wrong = [f"{r.label}: {r.wrong_path}" for r in rounds if r.wrong_path]
    result.judge(
        "oversell.served-by-the-path-under-test",
        not wrong,
        "; ".join(wrong) or "every order answer named the write path under test",
    )
    result.judge(
        "oversell.verify-clean-after-command-writes",
        not verify_problems,
        "; ".join(verify_problems)
        or ", ".join(f"{k}: {v}" for k, v in verifies.items() if k.endswith("command")),
    )
    result.judge(
        "oversell.verify-finds-and-repairs-legacy-drift",
        not truth_problems,
        "; ".join(truth_problems)
        or ", ".join(f"{k}: {v}" for k, v in verifies.items() if k.endswith("legacy")),
    )


def _play_round(
    ctx: ScenarioContext,
    server: ShopServer,
    url: str,
    worker_class: str,
    stage: str,
    number: int,
    tally: Tally,
) -> Round:
    sizes = ctx.sizes
    product_id = _new_product(ctx, server, sizes.oversell_stock)
    buyers, stock = sizes.oversell_buyers, sizes.oversell_stock
    done = Round(worker_class, stage, number, product_id, buyers, stock)
    rng = ctx.rng(f"oversell-{worker_class}-{stage}-{number}")
    customers = [rng.choice(ctx.facts.customer_ids) for _ in range(sizes.oversell_buyers)]
    replies: list[Reply] = []
    lock = threading.Lock()

    def buy(index: int) -> None:
        line = {"product_id": product_id, "quantity": 1}
        body = {"customer_id": customers[index], "lines": [line]}
        reply = post(server.base_url, "/api/orders", body)
        tally.add("POST /api/orders", reply)
        with lock:
            replies.append(reply)

    all_at_once(sizes.oversell_buyers, buy)
    for reply in replies:
        if reply.status == 201:
            done.created += 1
        elif reply.status == 409:
            done.refused += 1
        elif reply.status >= 500:
            done.server_errors += 1
        else:
            done.other += 1
        if reply.answered and reply.served_by != SERVED_BY[stage]:
            done.wrong_path += 1
    done.max_ms = max((r.ms for r in replies), default=0.0)
    done.stock_after, done.units_in_orders = _stock_and_units(url, product_id)
    # And what the API says (the legacy read of the product).
    shown = get(server.base_url, f"/api/products/{product_id}").json()
    done.api_stock = shown.get("stock") if isinstance(shown, dict) else None
    return done


def _new_product(ctx: ScenarioContext, server: ShopServer, stock: int) -> int:
    body = {
        "sku": f"OVERSELL-{uuid.uuid4().hex[:12]}",
        "name": "Last units",
        "price_cents": 999,
        "category_id": ctx.facts.category_id,
        "stock": stock,
    }
    reply = post(server.base_url, "/api/products", body)
    created = reply.json()
    if reply.status != 201 or not isinstance(created, dict):
        raise RuntimeError(f"could not create the product to sell: {reply.status} {reply.body!r}")
    return int(created["id"])


def _stock_and_units(url: str, product_id: int) -> tuple[int | None, int]:
    from legacy_app.models import Order, OrderLine, Stock

    with connected(url) as engine, engine.connect() as conn:
        stock = conn.execute(
            select(Stock.quantity).where(Stock.product_id == product_id)
        ).scalar_one_or_none()
        units = conn.execute(
            select(func.coalesce(func.sum(OrderLine.quantity), 0))
            .join(Order, Order.id == OrderLine.order_id)
            .where(OrderLine.product_id == product_id, Order.status != "cancelled")
        ).scalar_one()
    return stock, int(units)


def _stale_catalog_rows(url: str, product_ids: list[int]) -> int:
    """Products whose catalog read-model row is missing or shows another stock than the
    stock table: what verify must report as drift."""
    from legacy_app.cqrs.read_models import catalog_view
    from legacy_app.models import Stock

    with connected(url) as engine, engine.connect() as conn:
        rows = conn.execute(
            select(Stock.product_id, Stock.quantity, catalog_view.c.stock)
            .select_from(Stock)
            .outerjoin(catalog_view, catalog_view.c.product_id == Stock.product_id)
            .where(Stock.product_id.in_(product_ids))
        ).all()
    return sum(1 for _pid, quantity, shown in rows if shown != quantity)
