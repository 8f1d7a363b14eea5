"""How hard each scenario pushes: the full run (``make stress``) and ``--quick``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sizes:
    # -- the shop every scenario starts from (a copy per scenario)
    products: int
    customers: int
    orders: int
    # -- oversell: buyers racing for a product with ``oversell_stock`` units, per
    # (gunicorn worker class, write stage)
    oversell_servers: tuple[tuple[str, str], ...]
    oversell_stock: int
    oversell_buyers: int
    oversell_rounds: int
    # -- crash: clients writing while workers are killed
    crash_seconds: float
    #: Orders that must be acknowledged before the attack ends (it goes on past
    #: ``crash_seconds``, up to four times as long, on a machine too busy to reach them):
    #: a crash that killed workers but lost nothing because nothing was written proves
    #: nothing.
    crash_min_orders: int
    crash_clients: int
    crash_kill_every: float
    # -- flag flips under read load
    flips: int
    flip_readers: int
    # -- fuzzing from /openapi.json, per write stage
    fuzz_examples: int
    fuzz_seconds: float
    # -- read model renamed away / locked, stock locked
    outage_seconds: float
    lock_seconds: float
    #: Load before and after an outage, to see the shop answer normally around it.
    calm_seconds: float


FULL = Sizes(
    products=60,
    customers=100,
    orders=600,
    oversell_servers=(
        ("sync", "legacy"),
        ("sync", "command"),
        ("gthread", "legacy"),
        ("gthread", "command"),
    ),
    oversell_stock=20,
    oversell_buyers=60,
    oversell_rounds=3,
    crash_seconds=30.0,
    crash_min_orders=100,
    crash_clients=8,
    crash_kill_every=1.5,
    flips=100,
    flip_readers=6,
    fuzz_examples=40,
    fuzz_seconds=150.0,
    outage_seconds=10.0,
    lock_seconds=10.0,
    calm_seconds=2.0,
)

#: Seconds per scenario: what ``make test`` can afford on two cores, and still enough to
#: break each promise if it were broken (more buyers than stock, a dozen kills, forced
#: flips through both the API and the CLI, every operation fuzzed).
QUICK = Sizes(
    products=30,
    customers=40,
    orders=200,
    # Each server costs a gunicorn start and a verify: both worker kinds and both write
    # paths, in two servers.
    oversell_servers=(("sync", "legacy"), ("gthread", "command")),
    oversell_stock=20,
    oversell_buyers=30,
    oversell_rounds=1,
    crash_seconds=6.0,
    crash_min_orders=15,
    crash_clients=6,
    crash_kill_every=0.6,
    flips=12,
    flip_readers=3,
    fuzz_examples=3,
    fuzz_seconds=20.0,
    outage_seconds=3.0,
    lock_seconds=3.0,
    calm_seconds=0.8,
)
