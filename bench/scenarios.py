"""The read requests measured: one record per endpoint and parameter shape.

A record named exactly ``read:<endpoint>`` uses the endpoint's default parameters; the
variants that change the work the endpoint does (catalog sort, report window) are records
of their own, named ``read:<endpoint>?<param>=<value>``. Ids and pages are drawn at random
(seeded, so every run asks the same things) from what exists in the database.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

from .database import DataFacts

PER_PAGE = 20
#: Shoppers look at the first few pages of a sorted catalog, rarely the fiftieth.
BROWSED_PAGES = 5


@dataclass(frozen=True)
class ReadScenario:
    name: str
    params: str  # how the parameters vary, for the report
    path: Callable[[random.Random], str]


def _pages(count: int) -> int:
    return max(1, math.ceil(count / PER_PAGE))


def read_scenarios(facts: DataFacts) -> list[ReadScenario]:
    products, customers = facts.product_ids, facts.customer_ids
    catalog_pages = _pages(len(products))
    browsed = min(BROWSED_PAGES, catalog_pages)
    low_pages = _pages(facts.low_stock_count)

    def catalog(sort: str | None) -> Callable[[random.Random], str]:
        pages = catalog_pages if sort is None else browsed
        prefix = "/api/products?" if sort is None else f"/api/products?sort={sort}&"
        return lambda rng: f"{prefix}page={rng.randint(1, pages)}"

    def fixed(path: str) -> Callable[[random.Random], str]:
        return lambda _rng: path

    return [
        ReadScenario(
            "read:products.list_products",
            f"default sort (name), page random 1..{catalog_pages}",
            catalog(None),
        ),
        ReadScenario(
            "read:products.list_products?sort=popularity",
            f"sort=popularity, page random 1..{browsed}",
            catalog("popularity"),
        ),
        ReadScenario(
            "read:products.list_products?sort=rating",
            f"sort=rating, page random 1..{browsed}",
            catalog("rating"),
        ),
        ReadScenario(
            "read:products.get_product",
            f"random product of {len(products)}",
            lambda rng: f"/api/products/{rng.choice(products)}",
        ),
        ReadScenario(
            "read:customers.customer_orders",
            f"random customer of {len(customers)}, page 1",
            lambda rng: f"/api/customers/{rng.choice(customers)}/orders",
        ),
        ReadScenario(
            "read:customers.customer_summary",
            f"random customer of {len(customers)}",
            lambda rng: f"/api/customers/{rng.choice(customers)}/summary",
        ),
        ReadScenario(
            "read:reports.top_products",
            "defaults (days=30, limit=10)",
            fixed("/api/reports/top-products"),
        ),
        ReadScenario(
            "read:reports.top_products?days=365",
            "days=365, limit=10",
            fixed("/api/reports/top-products?days=365"),
        ),
        ReadScenario(
            "read:reports.daily_sales", "defaults (days=30)", fixed("/api/reports/daily-sales")
        ),
        ReadScenario(
            "read:reports.daily_sales?days=365",
            "days=365",
            fixed("/api/reports/daily-sales?days=365"),
        ),
        ReadScenario(
            "read:reports.low_stock",
            f"default threshold (10), page random 1..{low_pages}",
            lambda rng: f"/api/reports/low-stock?page={rng.randint(1, low_pages)}",
        ),
    ]
