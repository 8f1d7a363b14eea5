"""What the rollout machinery itself costs a request (issue 4).

- ``overhead:legacy-stage``: an endpoint wrapped by the toolkit at stage ``legacy`` against
  the same legacy view unwrapped (``bench/unwrapped_app.py``): the flag evaluation and
  the served-by header, per request.
- ``overhead:shadow``: the same endpoint at ``shadow`` with every request compared,
  against stage ``legacy``. The comparison runs after the response on the server's worker
  pool, so it is not in the timed request; each one is let finish before the next request
  (untimed), which measures what the request path pays.
- ``overhead:shadow-saturated``: the same, back to back. The comparisons then take CPU
  (and the GIL) from the next requests, on this machine's few cores: what a server with
  no core to spare pays. Reported as measured, without a target.
- ``flag-eval``: one ``state.flags.route(endpoint, kind, request)``, in this process.

The endpoint is a cheap one (a customer's first page of orders, an indexed lookup: a
few ms at any shop size, where a product's detail sums its sales and grows with the
orders), so that a small cost is not lost in the endpoint's own time; the pairs are many,
because the difference is small.
"""

from __future__ import annotations

import random
import statistics
import time
import timeit
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import create_engine, func, select

from .client import Reply, get
from .database import DataFacts
from .measure import Budget, Comparison, Side, run_ab

ENDPOINT = "customers.customer_orders"
#: Comparisons are kept per endpoint up to CQRS_COMPARISON_HISTORY (1000 by default), so
#: every request of the shadow measurement (warm-up included) must fit to be counted.
HISTORY = 1000
SUBJECT_HEADER = "X-CQRS-Subject"
SUBJECT = "customer-42"
#: After the last request: how long the shadow server's queue may go without recording.
SETTLE_SECONDS = 5.0


def _paths(facts: DataFacts, seed: str, count: int) -> list[str]:
    rng = random.Random(seed)
    return [f"/api/customers/{rng.choice(facts.customer_ids)}/orders" for _ in range(count)]


def _measure(
    name: str, facts: DataFacts, baseline: Side, candidate: Side, budget: Budget
) -> Comparison:
    paths = _paths(facts, name, budget.warmup + budget.samples)
    return run_ab(
        name,
        f"GET /api/customers/<random of {len(facts.customer_ids)}>/orders ({ENDPOINT})",
        baseline,
        candidate,
        lambda index, side: get(side.server.port, paths[index]),
        budget,
        ok_status=200,
        compare_bodies=True,
    )


def measure_legacy_stage(
    facts: DataFacts, unwrapped: Side, wrapped: Side, budget: Budget
) -> Comparison:
    return _measure("overhead:legacy-stage", facts, unwrapped, wrapped, budget)


def shadow_budget(budget: Budget) -> Budget:
    """``budget`` with no more requests than the comparison history keeps."""
    samples = min(budget.samples, HISTORY - budget.warmup)
    return Budget(samples, min(budget.min_samples, samples), budget.seconds, budget.warmup)


class ShadowLedger:
    """The comparisons the shadow server recorded for ``ENDPOINT``, read from its database.

    Counted by id (rows after a given one), not in total: the history is pruned per
    endpoint beyond ``HISTORY`` rows.
    """

    def __init__(self, url: str) -> None:
        from cqrs_layer.core.tables import comparisons

        self._engine = create_engine(url)
        self._table = comparisons

    def last_id(self) -> int:
        table = self._table
        query = select(func.max(table.c.id)).where(table.c.endpoint == ENDPOINT)
        with self._engine.connect() as connection:
            return int(connection.scalar(query) or 0)

    def outcomes_after(self, row_id: int) -> dict[str, int]:
        table = self._table
        query = (
            select(table.c.outcome, func.count())
            .where(table.c.endpoint == ENDPOINT, table.c.id > row_id)
            .group_by(table.c.outcome)
        )
        with self._engine.connect() as connection:
            return {str(outcome): int(n) for outcome, n in connection.execute(query)}

    def wait_for(self, row_id: int, count: int, timeout: float, poll: float) -> dict[str, int]:
        """The outcomes after ``row_id`` once ``count`` rows exist, or none came for
        ``timeout`` seconds."""
        last, still_since = -1, time.monotonic()
        while True:
            outcomes = self.outcomes_after(row_id)
            total, now = sum(outcomes.values()), time.monotonic()
            if total != last:
                last, still_since = total, now
            if total >= count or now - still_since > timeout:
                return outcomes
            time.sleep(poll)

    def close(self) -> None:
        self._engine.dispose()


def measure_shadow(
    name: str,
    facts: DataFacts,
    legacy: Side,
    shadowed: Side,
    budget: Budget,
    ledger: ShadowLedger,
    *,
    settle: bool,
) -> tuple[Comparison, dict[str, Any]]:
    """Legacy vs shadow, and what the shadow server's comparisons recorded (every request
    it served must have been compared, and match).

    ``settle``: after each shadow request, wait (untimed) until its comparison is
    recorded, so no comparison runs during a timed request: what the request path
    itself costs, on a server with a core to spare. Otherwise back to back, so the
    comparisons compete with the next requests for the CPU: a saturated machine.
    """
    paths = _paths(facts, name, budget.warmup + budget.samples)
    before = ledger.last_id()
    served = 0

    def act(index: int, side: Side) -> Reply:
        nonlocal served
        reply = get(side.server.port, paths[index])
        if side is shadowed:
            served += 1
            if settle:
                ledger.wait_for(before, served, timeout=5.0, poll=0.001)
        return reply

    result = run_ab(
        name,
        f"GET /api/customers/<random of {len(facts.customer_ids)}>/orders ({ENDPOINT}), "
        + ("each comparison finished before the next request" if settle else "back to back"),
        legacy,
        shadowed,
        act,
        budget,
        ok_status=200,
        compare_bodies=True,
    )
    outcomes = ledger.wait_for(before, served, timeout=SETTLE_SECONDS, poll=0.1)
    compared = {
        "expected": served,
        "recorded": sum(outcomes.values()),
        "outcomes": outcomes,
        "sample_rate": 1.0,
    }
    return result, compared


# -- one flag evaluation ---------------------------------------------------------------------


@dataclass(frozen=True)
class FlagEval:
    case: str
    best_us: float  # the fastest repeat, per evaluation (timeit's advice)
    median_us: float
    stage: str
    serve_new: bool
    evaluations: int


def flag_evaluations(url: str, number: int, repeat: int) -> list[FlagEval]:
    """Time ``state.flags.route`` in a request context of the real shop: with no flag
    row (the config default), then with a row at ``live`` 50% and a subject header.

    Writes a flag row: run it when no server uses the database any more. The timings
    include the cache refresh (one query per CQRS_FLAG_REFRESH_SECONDS), amortized.
    """
    from flask import request

    from cqrs_layer.ops.context import toolkit_of
    from legacy_app import create_app

    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "CQRS_DEFAULT_READ_STAGE": "legacy",
            "CQRS_DEFAULT_WRITE_STAGE": "legacy",
        }
    )
    toolkit = toolkit_of(app)
    results = []
    try:
        with app.test_request_context("/api/customers/1/orders", headers={SUBJECT_HEADER: SUBJECT}):
            results.append(_time_route(toolkit, request, "default", number, repeat))
            toolkit.changes.change(
                ENDPOINT,
                "live",
                percent=50,
                actor="bench",
                reason="bench: time a flag evaluation at live 50%",
                force=True,  # the bench database has no comparisons of it
            )
            results.append(_time_route(toolkit, request, "live-50%", number, repeat))
    finally:
        toolkit.engine.dispose()
    return results


def _time_route(toolkit: Any, request: Any, case: str, number: int, repeat: int) -> FlagEval:
    route: Callable[..., Any] = toolkit.router.route
    decision = route(ENDPOINT, "read", request)  # also fills the cache
    timer = timeit.Timer(
        "route(endpoint, 'read', request)",
        globals={"route": route, "endpoint": ENDPOINT, "request": request},
    )
    per_run = [seconds / number * 1e6 for seconds in timer.repeat(repeat=repeat, number=number)]
    return FlagEval(
        case,
        min(per_run),
        statistics.median(per_run),
        decision.stage,
        decision.serve_new,
        number * repeat,
    )
