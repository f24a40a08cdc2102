"""Grid expansion, dependency order and validation-only tuning."""

from __future__ import annotations

import numpy as np
import pytest

from shopflow.models.evaluation import EvaluationTargets
from shopflow.models.interactions import InteractionMatrix
from shopflow.models.recommenders import recommender_class
from shopflow.models.tuning import grid_points, tune_recommender, tuning_order


def test_grid_points_expand_every_combination() -> None:
    assert grid_points({}) == [{}]
    assert grid_points({"a": (1, 2), "b": ("x",)}) == [{"a": 1, "b": "x"}, {"a": 2, "b": "x"}]


def test_families_are_tuned_after_the_ones_they_start_from() -> None:
    order = tuning_order(["hybrid", "als_text", "popularity", "als", "ease", "content"])
    assert order.index("als") < order.index("als_text") < order.index("hybrid")
    assert order.index("ease") < order.index("hybrid") and order.index("content") < order.index("hybrid")
    assert sorted(order) == sorted(["hybrid", "als_text", "popularity", "als", "ease", "content"])


def test_tuning_keeps_the_best_validation_trial_and_the_hybrid_starts_from_tuned_members(
    checkerboard: InteractionMatrix, checkerboard_embeddings: np.ndarray
) -> None:
    validation = EvaluationTargets.from_windows(checkerboard, _withheld_diagonal(checkerboard))
    knn = tune_recommender("item_knn", checkerboard, validation, checkerboard_embeddings, {})
    assert len(knn.trials) == 3 and knn.validation_ndcg == max(trial["ndcg@10"] for trial in knn.trials)
    assert knn.params == knn.trials[[t["ndcg@10"] for t in knn.trials].index(knn.validation_ndcg)]["params"]
    hybrid = tune_recommender(
        "hybrid", checkerboard, validation, checkerboard_embeddings, {"ease": {"l2": 50.0}}, {"item_knn": knn.model}
    )
    assert hybrid.params["component_params"] == {"ease": {"l2": 50.0}}
    assert len(hybrid.params["weights"]) == 4 and abs(sum(hybrid.params["weights"]) - 1) < 1e-6
    assert hybrid.validation_ndcg == 1.0  # the withheld item is everyone's best unseen item


def test_a_concurrent_grid_has_the_trials_and_model_of_a_sequential_one(
    checkerboard: InteractionMatrix, checkerboard_embeddings: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    validation = EvaluationTargets.from_windows(checkerboard, _withheld_diagonal(checkerboard))
    assert recommender_class("bpr").concurrent_grid  # single-threaded fits, side by side
    concurrent = tune_recommender("bpr", checkerboard, validation, checkerboard_embeddings, {})
    monkeypatch.setattr(recommender_class("bpr"), "concurrent_grid", False)
    sequential = tune_recommender("bpr", checkerboard, validation, checkerboard_embeddings, {})
    assert len(concurrent.trials) == 2 and concurrent.trials == sequential.trials
    assert np.array_equal(concurrent.model.model.item_factors, sequential.model.model.item_factors)


def _withheld_diagonal(matrix: InteractionMatrix) -> InteractionMatrix:
    """A validation window holding every checkerboard user's withheld diagonal item."""
    rows = np.arange(50)
    return InteractionMatrix(
        matrix.user_items[rows].multiply(0).tocsr() + _diagonal(matrix, rows), matrix.user_ids[rows], matrix.item_ids
    )


def _diagonal(matrix: InteractionMatrix, rows: np.ndarray):
    from scipy import sparse

    return sparse.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, rows)), shape=(len(rows), matrix.n_items))
