"""``refresh-throughput``: read-model keys per second ``flask cqrs refresh`` applies after
a bulk change made outside the app (issue 9).

The change is one SQL UPDATE of ``order_lines`` (every k-th line's quantity + 1, spread
over the whole shop), as a data fix run in ``psql`` would be: the capture triggers record
the keys of every read model the lines feed (a product's catalog row and sales, the
order's customer history and summary, the day's sales, ...), and nothing applies them
until a refresh runs. The refresh is the function the command runs
(``Refresher.refresh_committed`` on the app's engine and registered read models, model by
model in its order), timed per model. It has no legacy counterpart: a figure, no target.

The same UPDATE is also run on the database copy without capture, and both UPDATEs are
timed: what the triggers alone cost a bulk write (the refresh is deferred there).

Keyed refreshes can be slow (each key recomputes from the model's ``source()``): a probe
of ``PROBE_LINES`` lines is refreshed first, and if the wanted number of lines would take
longer than ``budget`` seconds at the probe's rate (less the cost of a refresh that finds
nothing), fewer lines are updated; the record says how many were wanted and why fewer
were taken. The estimate grows with the lines, while the keys they touch do not (a
product's many lines are one catalog key), so it errs on the side of fewer lines.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, create_engine, func, select, update

PROBE_LINES = 10


@dataclass
class RefreshRate:
    lines_wanted: int
    lines: int  # lines the measured UPDATE changed
    keys: int  # keys the refresh applied (rows rebuilt, for a model rebuilt whole)
    seconds: float
    update_s: float  # the UPDATE, with capture
    update_plain_s: float  # the same UPDATE on the copy without capture
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    left_pending: dict[str, int] = field(default_factory=dict)  # change rows not applied
    probe: dict[str, Any] = field(default_factory=dict)
    scaled_down: str | None = None

    @property
    def keys_per_second(self) -> float:
        return self.keys / self.seconds if self.seconds > 0 else 0.0


def measure_refresh(url: str, plain_url: str, lines_wanted: int, budget: float) -> RefreshRate:
    from cqrs_layer.ops.context import toolkit_of
    from cqrs_layer.read.refresh import REBUILD_ABOVE, Refresher, pending_counts
    from legacy_app import create_app
    from legacy_app.models import OrderLine

    app = create_app({"SQLALCHEMY_DATABASE_URI": url})
    plain = create_engine(plain_url)
    try:
        with app.app_context():
            toolkit = toolkit_of(app)
            engine = toolkit.engine
            models = dict(toolkit.registry.read_models)
            refresher = Refresher(lambda: models)

            def refresh() -> tuple[float, dict[str, dict[str, Any]], dict[str, str]]:
                with engine.connect() as connection:
                    waiting = pending_counts(connection)
                done: dict[str, dict[str, Any]] = {}
                failed: dict[str, str] = {}
                started = time.perf_counter()
                for name in sorted(models):  # what `flask cqrs refresh` does, in its order
                    before = time.perf_counter()
                    result = refresher.refresh_committed(engine, only=[name])
                    failed.update(result.failed)
                    if name in result.models:
                        done[name] = {
                            "keys": result.models[name],
                            "seconds": round(time.perf_counter() - before, 3),
                            "change_rows": waiting.get(name, 0),
                            "rebuilt": waiting.get(name, 0) > REBUILD_ABOVE,
                        }
                return time.perf_counter() - started, done, failed

            refresh()  # nothing should be pending; if something is, it is not ours to time
            idle_s, _, _ = refresh()  # what a refresh costs that finds nothing to do
            with engine.connect() as connection:
                total = int(connection.scalar(select(func.count()).select_from(OrderLine)) or 0)
            step = max(2, total // max(1, lines_wanted))

            def change(target: Engine, offset: int, count: int) -> tuple[float, int]:
                chosen = (
                    select(OrderLine.id)
                    .where(OrderLine.id % step == offset)
                    .order_by(OrderLine.id)
                    .limit(count)
                )
                started = time.perf_counter()
                with target.begin() as connection:
                    changed = connection.execute(
                        update(OrderLine)
                        .where(OrderLine.id.in_(chosen))
                        .values(quantity=OrderLine.quantity + 1)
                    ).rowcount
                return time.perf_counter() - started, int(changed)

            _, probed = change(engine, 1, min(PROBE_LINES, lines_wanted))
            probe_s, probe_models, _ = refresh()
            per_line = max(probe_s - idle_s, 1e-6) / max(probed, 1)
            lines = lines_wanted
            scaled_down = None
            if idle_s + per_line * lines_wanted > budget:
                lines = max(probed, int((budget - idle_s) / per_line))
                scaled_down = (
                    f"{lines_wanted} lines would take about "
                    f"{idle_s + per_line * lines_wanted:.0f} s at the probe's rate ({probed} "
                    f"lines in {probe_s:.2f} s); the budget is {budget:.0f} s"
                )
            update_s, changed = change(engine, 0, lines)
            update_plain_s, _ = change(plain, 0, lines)
            seconds, done, failed = refresh()
            with engine.connect() as connection:
                left = pending_counts(connection)
    finally:
        plain.dispose()
        toolkit_of(app).engine.dispose()
    return RefreshRate(
        lines_wanted=lines_wanted,
        lines=changed,
        keys=sum(model["keys"] for model in done.values()),
        seconds=seconds,
        update_s=update_s,
        update_plain_s=update_plain_s,
        models=done,
        failed=failed,
        left_pending=left,
        probe={
            "lines": probed,
            "seconds": round(probe_s, 3),
            "idle_refresh_s": round(idle_s, 3),
            "keys": sum(m["keys"] for m in probe_models.values()),
        },
        scaled_down=scaled_down,
    )
