"""Flag flips: read endpoints change stage under read load, and nobody may notice.

With no writes, every answer a read endpoint gives must equal the legacy answer to the same
request; so the legacy answers are taken once (every flag on legacy), then reader threads
ask the same requests over and over while ``flips`` forced changes move the read endpoints
between legacy, shadow, live (various percentages) and complete: three in four through the
admin API, one in four through ``flask cqrs flags set``. Every answer is compared with the
snapshot. Afterwards: a change must be live in every worker within a second, every change
must be in the audit log, and the comparisons the flips caused must have found no mismatch.
"""

from __future__ import annotations

import json
import random
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, func, select

from .context import ScenarioContext
from .database import connected, toolkit_table
from .http import get, request
from .load import clients
from .results import ScenarioResult
from .servers import ShopServer, running
from .shop_cli import set_flag
from .tally import Tally

CATALOG = "products.list_products"
OTHERS = (
    "products.get_product",
    "reports.low_stock",
    "reports.top_products",
    "reports.daily_sales",
    "customers.customer_orders",
    "customers.customer_summary",
)
READ_STAGES = ("legacy", "shadow", "live", "complete")
LIVE_PERCENTS = (10.0, 50.0, 100.0)
REASON = "stress: flag flip under read load"
#: Flag caches refresh every 0.5 s (CQRS_FLAG_REFRESH_SECONDS): a change must show within 1 s.
PROPAGATION_SECONDS = 1.0
PROPAGATION_PROBES = 40


@dataclass
class Observed:
    compared: int = 0
    different: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, difference: str | None) -> None:
        with self.lock:
            self.compared += 1
            if difference is not None:
                self.different.append(difference)


def run(ctx: ScenarioContext) -> ScenarioResult:
    result = ScenarioResult("flag-flips", ctx.backend)
    token = f"stress-{secrets.token_hex(16)}"
    tally = Tally()
    observed = Observed()
    with ctx.template.copy("flag-flips") as url, connected(url) as engine:
        env = {"FLASK_CQRS_ADMIN_TOKEN": token}
        with running(ctx.server("flag-flips", url, env=env)) as server:
            paths = _read_paths(ctx)
            snapshot = _snapshot(server, paths)
            flips, catalog_stage = _flip_under_load(
                ctx, server, url, token, paths, snapshot, tally, observed
            )
            propagation, last_flips = _propagation(server, token, tally, catalog_stage)
            flips += last_flips
        audit = _audit(engine)
        outcomes = _comparison_outcomes(engine)
    result.add_tally(tally)
    result.counts.flips = sum(1 for f in flips if f.changed)
    _judge(result, observed, flips, propagation, audit, outcomes, tally)
    result.details = {
        "answers_compared": observed.compared,
        "paths": len(paths),
        "flips_by_channel": dict(Counter(f.channel for f in flips if f.changed)),
        "served_by": dict(tally.served_by),
        "comparison_outcomes": outcomes,
        "audit": audit,
        "propagation": propagation,
    }
    return result


def _read_paths(ctx: ScenarioContext) -> list[str]:
    facts = ctx.facts
    paths = [f"/api/products?sort={s}&per_page=10" for s in
             ("name", "-name", "price", "-price", "rating", "popularity")]  # fmt: skip
    paths += [
        "/api/products?sort=popularity&page=2&per_page=7",
        "/api/products?q=a&in_stock=true",
        f"/api/products?category={facts.category_id}&sort=-price",
        "/api/reports/top-products?days=30&limit=5",
        "/api/reports/top-products?days=365",
        "/api/reports/daily-sales?days=30",
        "/api/reports/daily-sales?days=365",
        "/api/reports/low-stock",
        "/api/reports/low-stock?threshold=50&per_page=5",
    ]
    paths += [f"/api/products/{p}" for p in facts.product_ids[::7]]
    for customer in facts.customer_ids[::9]:
        paths += [f"/api/customers/{customer}/orders", f"/api/customers/{customer}/summary"]
    return paths


def _snapshot(server: ShopServer, paths: list[str]) -> dict[str, tuple[int, Any]]:
    """The legacy answer to each path, before any flag moves."""
    snapshot = {}
    for path in paths:
        reply = get(server.base_url, path)
        if reply.served_by != "legacy" or reply.status != 200:
            raise RuntimeError(f"snapshot of {path}: {reply.status} served by {reply.served_by}")
        snapshot[path] = (reply.status, reply.json())
    return snapshot


@dataclass(frozen=True)
class Flip:
    endpoint: str
    stage: str
    percent: float | None
    channel: str  # "api" or "cli"
    changed: bool
    problem: str | None = None


def _flip_under_load(
    ctx: ScenarioContext,
    server: ShopServer,
    url: str,
    token: str,
    paths: list[str],
    snapshot: dict[str, tuple[int, Any]],
    tally: Tally,
    observed: Observed,
) -> tuple[list[Flip], str]:
    """The flips made, and the catalog's stage after the last one."""

    def reader(index: int, stop: threading.Event) -> None:
        rng = ctx.rng(f"flip-reader-{index}")
        while not stop.is_set():
            path = rng.choice(paths)
            # A new rollout subject per request: live percentages serve both paths.
            subject = {"X-CQRS-Subject": f"subject-{rng.randrange(10_000)}"}
            reply = get(server.base_url, path, headers=subject)
            tally.add(f"GET {path}", reply)
            expected = snapshot[path]
            if (reply.status, reply.json()) != expected:
                observed.add(f"{path} ({reply.served_by}): {reply.status} {reply.body[:160]!r}")
            else:
                observed.add(None)

    rng = ctx.rng("flipper")
    current = {endpoint: ("legacy", 100.0) for endpoint in (CATALOG, *OTHERS)}
    flips = []
    with clients(ctx.sizes.flip_readers, reader, "reader"):
        for number in range(ctx.sizes.flips):
            endpoint = CATALOG if number % 2 == 0 else rng.choice(OTHERS)
            stage, percent = _next_stage(rng, current[endpoint])
            channel = "cli" if number % 4 == 3 else "api"
            flip = _flip(server, url, token, endpoint, stage, percent, channel)
            flips.append(flip)
            if flip.changed:
                current[endpoint] = (stage, percent or 100.0)
            time.sleep(rng.uniform(0.05, 0.25))
        time.sleep(PROPAGATION_SECONDS)  # readers see the last stages too
    return flips, current[CATALOG][0]


def _next_stage(rng: random.Random, now: tuple[str, float]) -> tuple[str, float | None]:
    """A different (stage, percent) from ``now``: every flip changes something."""
    while True:
        stage = rng.choice(READ_STAGES)
        percent = rng.choice(LIVE_PERCENTS) if stage == "live" else 100.0
        if (stage, percent) != now:
            return stage, percent if stage == "live" else None


def _flip(
    server: ShopServer,
    url: str,
    token: str,
    endpoint: str,
    stage: str,
    percent: float | None,
    channel: str,
) -> Flip:
    if channel == "cli":
        run = set_flag(url, [endpoint], stage, REASON, force=True, percent=percent)
        problem = None if run.exit_code == 0 else f"exit {run.exit_code}: {run.stderr[-300:]}"
        return Flip(endpoint, stage, percent, channel, run.exit_code == 0, problem)
    return _api_flip(server, token, endpoint, stage, percent)


def _api_flip(
    server: ShopServer, token: str, endpoint: str, stage: str, percent: float | None
) -> Flip:
    reply = _put_flag(server, token, endpoint, stage, percent)
    answer = reply.json()
    changed = reply.status == 200 and isinstance(answer, dict) and bool(answer.get("changed"))
    problem = None if changed else f"{reply.status} {reply.body[:300]!r}"
    return Flip(endpoint, stage, percent, "api", changed, problem)


def _put_flag(
    server: ShopServer, token: str, endpoint: str, stage: str, percent: float | None
) -> Any:
    body: dict[str, Any] = {"stage": stage, "reason": REASON, "force": True}
    if percent is not None:
        body["percent"] = percent
    return request(
        server.base_url,
        "PUT",
        f"/cqrs/api/flags/{endpoint}",
        body,
        headers={"Authorization": f"Bearer {token}"},
    )


def _propagation(
    server: ShopServer, token: str, tally: Tally, catalog_stage: str
) -> tuple[dict[str, int], list[Flip]]:
    """Move the catalog to complete and to legacy (in the order that changes it each time);
    a second later every worker must serve it so (PROPAGATION_PROBES requests, one at a
    time, reach all four workers)."""
    off_path = {}
    flips = []
    moves = [("complete", "read-model"), ("legacy", "legacy")]
    if catalog_stage == "complete":
        moves.reverse()
    for stage, served_by in moves:
        flips.append(_api_flip(server, token, CATALOG, stage, None))
        time.sleep(PROPAGATION_SECONDS)
        wrong = 0
        for _ in range(PROPAGATION_PROBES):
            probe = get(server.base_url, "/api/products?per_page=5")
            tally.add("GET /api/products (propagation)", probe)
            wrong += probe.served_by != served_by
        off_path[stage] = wrong
    return off_path, flips


def _audit(engine: Engine) -> dict[str, int]:
    flag_audit = toolkit_table("cqrs_flag_audit")

    with engine.connect() as conn:
        rows = conn.execute(
            select(flag_audit.c.actor, flag_audit.c.reason, flag_audit.c.forced)
        ).all()
    return {
        "forced_flip_entries": sum(1 for _a, reason, forced in rows if reason == REASON and forced),
        "auto_demotions": sum(1 for actor, _r, _f in rows if actor == "auto-demotion"),
        "entries": len(rows),
    }


def _comparison_outcomes(engine: Engine) -> dict[str, int]:
    comparisons = toolkit_table("cqrs_comparisons")

    with engine.connect() as conn:
        rows = conn.execute(
            select(comparisons.c.outcome, func.count()).group_by(comparisons.c.outcome)
        ).all()
    return {str(outcome): int(n) for outcome, n in rows}


def _judge(
    result: ScenarioResult,
    observed: Observed,
    flips: list[Flip],
    propagation: dict[str, int],
    audit: dict[str, int],
    outcomes: dict[str, int],
    tally: Tally,
) -> None:
    result.judge(
        "flag-flips.no-5xx",
        tally.server_errors == 0 and not tally.count(0),
        f"{tally.server_errors} 5xx, {tally.count(0)} unanswered of {tally.requests} requests"
        + (f"; e.g. {tally.examples[0]}" if tally.examples else ""),
    )
    served = ", ".join(f"{k} {v}" for k, v in sorted(tally.served_by.items()))
    result.judge(
        "flag-flips.every-answer-equals-legacy",
        not observed.different,
        f"{len(observed.different)} of {observed.compared} answers differ from the legacy "
        f"snapshot (served by: {served})"
        + (f"; e.g. {observed.different[0]}" if observed.different else ""),
    )
    both = tally.served_by["legacy"] > 0 and tally.served_by["read-model"] > 0
    result.judge(
        "flag-flips.both-paths-served",
        both,
        f"served by: {served} (the flips must really move answers between the paths)",
    )
    failed = [f"{f.channel} {f.endpoint}->{f.stage}: {f.problem}" for f in flips if not f.changed]
    changed = sum(f.changed for f in flips)
    result.judge(
        "flag-flips.every-forced-change-applied-and-audited",
        not failed and audit["forced_flip_entries"] == changed,
        f"{changed} of {len(flips)} changes applied, {audit['forced_flip_entries']} audited "
        "as forced" + (f"; {'; '.join(failed[:3])}" if failed else ""),
    )
    result.judge(
        "flag-flips.live-in-every-worker-within-1s",
        not any(propagation.values()),
        f"{PROPAGATION_SECONDS:g} s after a change, answers still on the old path: "
        + json.dumps(propagation),
    )
    result.judge(
        "flag-flips.comparisons-blame-nothing",
        outcomes.get("mismatch", 0) == 0,
        f"comparison outcomes {json.dumps(outcomes)}, {audit['auto_demotions']} auto-demotions",
    )
