"""A tiny two-taste shop for the registry tests, a deliberately useless recommender family, and a night."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from shopflow.models.pipeline import RecommenderStageResult, run_recommender_stage
from shopflow.models.recommenders.base import Recommender
from shopflow.registry.gate import PromotionDecision
from shopflow.registry.lineage import NightLineage, data_snapshot_id
from shopflow.registry.nightly import register_and_promote, write_champion_recommendations
from shopflow.settings import Settings

FIRST_DAY = date(2026, 3, 1)
DAYS = 60
USERS = 80
PRODUCTS_PER_TASTE = 30
LATE_USER = "U-LATE"  # a red shopper whose first (and only) day is LATE_USER_DAY
LATE_USER_DAY = FIRST_DAY + timedelta(days=50)


def shop_frames(seed: int = 3) -> dict[str, pd.DataFrame]:
    """Red and blue shoppers view (and half the time buy) products of their colour, 1 in 10 times any product.

    Plus :data:`LATE_USER`, who views and buys three red favourites on :data:`LATE_USER_DAY` only.
    """
    rng = np.random.default_rng(seed)
    products = [f"P-{colour}-{n:02d}" for colour in ("RED", "BLUE") for n in range(PRODUCTS_PER_TASTE)]
    popularity = np.tile(np.linspace(2.0, 1.0, PRODUCTS_PER_TASTE), 2)  # a few favourites per colour
    clicks, orders = [], []
    for user in range(USERS):
        colour = "RED" if user % 2 == 0 else "BLUE"
        mine = np.array([colour in product for product in products])
        for offset in sorted(rng.choice(DAYS, size=12, replace=False)):
            weights = popularity * np.where(mine, 9.0, 1.0)
            product = products[rng.choice(len(products), p=weights / weights.sum())]
            day = FIRST_DAY + timedelta(days=int(offset))
            clicks.append((f"U{user:02d}", product, "view", day))
            if rng.random() < 0.5:
                orders.append((f"U{user:02d}", product, int(rng.integers(1, 3)), day))
    for product in products[:3]:
        clicks.append((LATE_USER, product, "view", LATE_USER_DAY))
        orders.append((LATE_USER, product, 1, LATE_USER_DAY))
    catalogue = pd.DataFrame(
        {
            "product_id": products,
            "title": [f"{p.split('-')[1].lower()} product {p[-2:]}" for p in products],
            "category": "home",
            "brand": "shopflow",
            "attributes": "{}",
            "description": [f"a {p.split('-')[1].lower()} thing" for p in products],
            "first_listed_date": FIRST_DAY,
        }
    )
    return {
        "fct_clicks": pd.DataFrame(clicks, columns=["user_id", "product_id", "event_type", "event_date"]),
        "fct_order_lines": pd.DataFrame(orders, columns=["user_id", "product_id", "quantity", "order_date"]),
        "dim_products": catalogue,
    }


def write_shop(path: Path, frames: dict[str, pd.DataFrame]) -> None:
    """The marts the recommender stage reads, created from the frames."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as con:
        con.execute("create schema if not exists marts")
        for table, frame in frames.items():
            con.register("frame", frame)
            con.execute(f"create or replace table marts.{table} as select * from frame")
            con.unregister("frame")


class RandomFactorsRecommender(Recommender):
    """A deliberately useless model for the promotion gate: random user and item factors.

    Not registered on import (other tests run every registered family): see the ``random_factors`` fixture.
    """

    name = "random_factors"

    @dataclass(frozen=True)
    class Params:
        factors: int = 8
        seed: int = 0

    def _fit(self) -> None:
        rng = np.random.default_rng(self.params.seed)
        matrix = self.fitted
        self.user_factors = rng.standard_normal((matrix.n_users, self.params.factors)).astype(np.float32)
        self.item_factors = rng.standard_normal((matrix.n_items, self.params.factors)).astype(np.float32)

    def score_users(self, user_rows: np.ndarray) -> np.ndarray:
        return self.user_factors[user_rows] @ self.item_factors.T

    def score_similar(self, item_columns: np.ndarray) -> np.ndarray:
        return self.item_factors[item_columns] @ self.item_factors.T

    def _state(self) -> dict[str, np.ndarray]:
        return {"user_factors": self.user_factors, "item_factors": self.item_factors}

    def _restore(self, state: dict[str, np.ndarray]) -> None:
        self.user_factors, self.item_factors = state["user_factors"], state["item_factors"]


def run_night(
    settings: Settings, run_date: date, candidates, encoder, audit_passed: bool = True, champion=None
) -> tuple[RecommenderStageResult, PromotionDecision]:
    """The flow's order: recommender stage → register and gate → champion's recommendations.

    Without ``champion`` every night compares its candidates; the flow passes the registry's champion.
    """
    result = run_recommender_stage(settings, run_date, candidates=candidates, encoder=encoder, champion=champion)
    lineage = NightLineage(
        run_date, data_snapshot_id(settings), f"dbt-{run_date:%m%d}", audit_passed, "3 expectations, 0 errors"
    )
    decision = register_and_promote(settings, run_date, result, lineage)
    write_champion_recommendations(settings, run_date, result)
    return result, decision
