"""The popularity baseline: every user gets the items most users interacted with (recently, if asked)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shopflow.models.recommenders.base import Recommender, register


@register
class PopularityRecommender(Recommender):
    """Score = number of distinct users who interacted with the item (the same list for everyone)."""

    name = "popularity"

    @dataclass(frozen=True)
    class Params:
        recent_days: int | None = None  # count only interactions in the data's last N days (None: all)

    param_grid = {"recent_days": (None, 7, 28)}

    def _fit(self) -> None:
        self.item_users = self.fitted.item_user_counts(self.params.recent_days).astype(np.float32)

    def score_users(self, user_rows: np.ndarray) -> np.ndarray:
        return np.tile(self.item_users, (len(user_rows), 1))

    def score_similar(self, item_columns: np.ndarray) -> np.ndarray:
        return np.tile(self.item_users, (len(item_columns), 1))

    def _state(self) -> dict[str, np.ndarray]:
        return {"item_users": self.item_users}

    def _restore(self, state: dict[str, np.ndarray]) -> None:
        self.item_users = state["item_users"]
