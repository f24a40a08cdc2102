"""The evaluation protocol on a hand-made train/window pair with a fixed-score model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shopflow.models.evaluation import EvaluationTargets, evaluate
from shopflow.models.interactions import InteractionMatrix
from shopflow.models.recommenders.base import Recommender

ITEMS = np.array(["a", "b", "c", "d", "e", "f", "g"])
# train: u1 bought a, b; u2 c, d; u3 a
TRAIN = InteractionMatrix.from_frame(
    pd.DataFrame({"user_id": ["u1", "u1", "u2", "u2", "u3"], "product_id": list("abcda"), "weight": 1.0}), ITEMS
)
# window: u1 b (repeat), c, e; u2 c (repeat only); u3 d, e; u4 (new user) a, g
WINDOW = InteractionMatrix.from_frame(
    pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u1", "u2", "u3", "u3", "u4", "u4"],
            "product_id": list("bcecdeag"),
            "weight": 1.0,
        }
    ),
    ITEMS,
)
#                    a    b    c    d    e    f    g
FIXED_SCORES = {
    "u1": np.array([0.9, 0.8, 0.1, 0.5, 0.7, 0.3, 0.2], dtype=np.float32),
    "u3": np.array([0.9, 0.2, 0.3, 0.6, 0.1, 0.4, 0.5], dtype=np.float32),
}


class FixedScores(Recommender):
    """A test double: the scores above, whatever it is fitted on."""

    name = "fixed-scores"

    def _fit(self) -> None:
        return None

    def score_users(self, user_rows: np.ndarray) -> np.ndarray:
        return np.stack([FIXED_SCORES[self.fitted.user_ids[row]] for row in user_rows])

    def score_similar(self, item_columns: np.ndarray) -> np.ndarray:
        return np.zeros((len(item_columns), self.fitted.n_items), dtype=np.float32)


@pytest.fixture
def targets() -> EvaluationTargets:
    return EvaluationTargets.from_windows(TRAIN, WINDOW)


def test_relevant_items_are_new_to_known_users(targets: EvaluationTargets) -> None:
    # u1: {c, e} (b was bought before); u2: only a repeat → not evaluated; u3: {d, e}; u4: unknown → not evaluated
    assert TRAIN.user_ids[targets.user_rows].tolist() == ["u1", "u3"]
    assert [ITEMS[row.indices].tolist() for row in targets.relevant] == [["c", "e"], ["d", "e"]]
    # cold = no interaction before the window, at least one in it: e and g (f never interacted, d was bought)
    assert ITEMS[targets.cold_items].tolist() == ["e", "g"]
    assert targets.summary() == {
        "evaluated_users": 2,
        "relevant_pairs": 4,
        "cold_items": 2,
        "cold_evaluated_users": 2,
        "cold_relevant_pairs": 2,
    }


def test_metrics_of_a_fixed_ranking(targets: EvaluationTargets) -> None:
    model = FixedScores().fit(TRAIN)
    metrics = evaluate(model, targets, k=2)
    # u1: seen a, b masked → e .7, d .5 → hits [e ✓, d ✗] of {c, e}; u3: seen a → d .6, g .5 → [d ✓, g ✗] of {d, e}
    # both: P@2 = 1/2, R@2 = 1/2, AP@2 = (1/1) / min(2, 2) = 1/2, NDCG@2 = 1 / (1 + 1/log2 3) = 0.613147
    np.testing.assert_allclose(metrics.precision, [0.5, 0.5])
    np.testing.assert_allclose(metrics.recall, [0.5, 0.5])
    np.testing.assert_allclose(metrics.average_precision, [0.5, 0.5])
    np.testing.assert_allclose(metrics.ndcg, [0.613147, 0.613147], atol=1e-6)
    # cold items e, g only: u1 scores e .7 > g .2 → AUC 1; u3 e .1 < g .5 → AUC 0; top-2 of 2 cold items → recall 1
    np.testing.assert_allclose(metrics.cold_auc, [1.0, 0.0])
    np.testing.assert_allclose(metrics.cold_recall, [1.0, 1.0])
    # cold Recall@1: u1 lists e (relevant) → 1; u3 lists g → 0
    np.testing.assert_allclose(evaluate(model, targets, k=1).cold_recall, [1.0, 0.0])
    summary = metrics.summary(n_resamples=200)
    # coverage@2: {e, d} ∪ {d, g} = 3 of 7 items
    assert summary["coverage@2"]["value"] == pytest.approx(3 / 7)
    assert summary["ndcg@2"]["value"] == pytest.approx(0.613147, abs=1e-6)
    assert summary["cold_auc"]["value"] == pytest.approx(0.5)
    for metric in summary.values():
        low, high = metric["ci95"]
        assert low <= metric["value"] + 1e-12 and metric["value"] <= high + 1e-12


def test_a_window_without_cold_items_reports_no_cold_metrics() -> None:
    window = InteractionMatrix.from_frame(pd.DataFrame({"user_id": ["u1"], "product_id": ["c"], "weight": 1.0}), ITEMS)
    targets = EvaluationTargets.from_windows(TRAIN, window)
    summary = evaluate(FixedScores().fit(TRAIN), targets, k=2).summary(n_resamples=50)
    assert summary["cold_auc"] == {"value": None, "ci95": None}
    assert summary["ndcg@2"]["value"] == 0.0  # c is ranked last for u1


def test_users_scored_in_concurrent_batches_get_the_metrics_and_rankings_of_one_batch(
    targets: EvaluationTargets, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = FixedScores().fit(TRAIN)
    whole, whole_ranking = evaluate(model, targets), model.recommend(np.array(["u1", "u3"]), k=3)
    monkeypatch.setattr("shopflow.models.ranking.BATCH_USERS", 1)  # one user per batch, two threads
    batched, batched_ranking = evaluate(model, targets), model.recommend(np.array(["u1", "u3"]), k=3)
    for name in ("ndcg", "recall", "average_precision", "precision", "top_items", "cold_auc", "cold_recall"):
        assert np.array_equal(getattr(batched, name), getattr(whole, name)), name
    pd.testing.assert_frame_equal(batched_ranking, whole_ranking)
    assert batched_ranking["user_id"].tolist() == ["u1"] * 3 + ["u3"] * 3
