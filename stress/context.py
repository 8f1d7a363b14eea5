"""What every scenario is given: the seeded template, the sizes, where logs go, a voice."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .database import ShopFacts, Template
from .servers import ServerSpec
from .sizes import Sizes


@dataclass(frozen=True)
class ScenarioContext:
    template: Template
    sizes: Sizes
    log_dir: Path
    seed: int
    say: Callable[[str], None]

    @property
    def backend(self) -> str:
        return self.template.backend

    @property
    def facts(self) -> ShopFacts:
        return self.template.facts

    def rng(self, salt: str) -> random.Random:
        """A generator per use, so a run's random choices repeat with the same --seed."""
        return random.Random(f"{self.seed}:{self.backend}:{salt}")

    def server(
        self,
        label: str,
        database_url: str,
        *,
        worker_class: str = "sync",
        env: dict[str, str] | None = None,
    ) -> ServerSpec:
        return ServerSpec(label, database_url, self.log_dir, worker_class, env)
