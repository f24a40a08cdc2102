"""The offline evaluation protocol: who is evaluated, what is relevant, what is ranked, and the summary with CIs.

For a model fitted on the interactions *before* a window and the interactions *inside* it (both from
:class:`~shopflow.models.interactions.EventLog`, so they carry the dbt weights):

* **Ranked items**: the whole catalogue (every product of ``dim_products``, cold ones included) minus the items
  the user already interacted with before the window: seen items are excluded from the top-k.
* **Relevant items**: the items the user interacted with inside the window (positive weight: views, net carts or
  net purchases; on Online Retail only net purchases exist) that they had *not* interacted with before. Repeat
  purchases, a third of Online Retail's holdout pairs, are therefore neither recommended nor counted: the
  recommender is judged on discovery, which is what a "you may also like" list is for.
* **Evaluated users**: users with interactions before the window (the model knows them) and at least one
  relevant item in it. Users new in the window are not evaluated (no model can personalise for them).
* **Metrics** (:mod:`shopflow.models.metrics`): NDCG@10, Recall@10, MAP@10, Precision@10 per user, averaged,
  with 95 % percentile-bootstrap CIs over evaluated users (1,000 resamples, the same draws for every model:
  paired); catalogue coverage of the union of the top-10 lists, with a delete-one-user jackknife CI.
* **Cold items**: products with no interaction before the window and at least one inside it (first interaction
  inside the window). For every evaluated user with at least one relevant cold item (and at least one cold item
  that is not relevant to them), the model's scores for *the cold items only* are ranked: ranking AUC (relevant
  cold items vs the other cold items; ties count ½, so a model that cannot tell cold items apart scores 0.5)
  and Recall@10 of that cold-only ranking; means over those users with bootstrap CIs.
* **Ties** in a top-k are broken by catalogue order (deterministic). The same protocol scores the validation
  window (hyper-parameters, fusion weights, model selection) and the holdout (reported only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy import sparse

from shopflow.models.interactions import InteractionMatrix, align_rows
from shopflow.models.metrics import (
    average_precision_at_k,
    bootstrap_ci,
    catalogue_coverage,
    coverage_jackknife_ci,
    ndcg_at_k,
    precision_at_k,
    ranking_auc,
    recall_at_k,
    top_k_hits,
)
from shopflow.models.ranking import in_batches, mask_seen, top_k

if TYPE_CHECKING:
    from shopflow.models.recommenders.base import Recommender

K = 10
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 20111209


@dataclass(frozen=True)
class EvaluationTargets:
    """What a window asks of a model fitted on the matrix before it: evaluated rows, relevant items, cold items."""

    user_rows: np.ndarray  # evaluated users, as rows of the training matrix
    relevant: sparse.csr_matrix  # (evaluated users × items), 1 where relevant
    cold_items: np.ndarray  # columns of the items whose first interaction is inside the window

    @classmethod
    def from_windows(cls, train: InteractionMatrix, window: InteractionMatrix) -> EvaluationTargets:
        """Targets for a model fitted on ``train``, from the interactions ``window`` after it (same items)."""
        if not np.array_equal(train.item_ids, window.item_ids):
            raise ValueError("train and window matrices must share one item vocabulary")
        in_window = (align_rows(window, train.user_ids) > 0).astype(np.float32)
        new_to_user = (in_window - in_window.multiply(train.user_items > 0)).tocsr()
        new_to_user.eliminate_zeros()
        user_rows = np.flatnonzero(np.diff(new_to_user.indptr))
        cold = (train.item_user_counts() == 0) & (window.item_user_counts() > 0)
        return cls(user_rows, new_to_user[user_rows], np.flatnonzero(cold))

    @property
    def n_users(self) -> int:
        return len(self.user_rows)

    @property
    def cold_users(self) -> np.ndarray:
        """Mask of evaluated users with ≥ 1 relevant cold item and ≥ 1 cold item that is not (AUC is defined)."""
        n_cold_relevant = np.diff(self.relevant[:, self.cold_items].tocsr().indptr)
        return (n_cold_relevant > 0) & (n_cold_relevant < len(self.cold_items))

    def summary(self) -> dict:
        return {
            "evaluated_users": self.n_users,
            "relevant_pairs": int(self.relevant.nnz),
            "cold_items": len(self.cold_items),
            "cold_evaluated_users": int(self.cold_users.sum()),
            "cold_relevant_pairs": int(self.relevant[self.cold_users][:, self.cold_items].nnz),
        }


@dataclass(frozen=True)
class UserMetrics:
    """Per-user metric values of one model on one set of targets (cold metrics: per cold-evaluated user)."""

    ndcg: np.ndarray
    recall: np.ndarray
    average_precision: np.ndarray
    precision: np.ndarray
    top_items: np.ndarray  # (users × k) columns, for coverage
    cold_auc: np.ndarray
    cold_recall: np.ndarray
    n_items: int

    def summary(self, n_resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> dict[str, dict]:
        """Every metric as ``{"value": …, "ci95": [low, high]}`` (None where no user qualifies)."""
        k = self.top_items.shape[1]
        per_user = np.column_stack([self.ndcg, self.recall, self.average_precision, self.precision])
        names = [f"ndcg@{k}", f"recall@{k}", f"map@{k}", f"precision@{k}"]
        result = _bootstrap_means(names, per_user, n_resamples, seed)
        coverage = {"value": None, "ci95": None}
        if len(self.top_items):
            low, high = coverage_jackknife_ci(self.top_items, self.n_items)
            coverage = {"value": catalogue_coverage(self.top_items, self.n_items), "ci95": [low, high]}
        result[f"coverage@{k}"] = coverage
        cold = np.column_stack([self.cold_auc, self.cold_recall])
        return result | _bootstrap_means(["cold_auc", f"cold_recall@{k}"], cold, n_resamples, seed)


def evaluate(model: Recommender, targets: EvaluationTargets, k: int = K) -> UserMetrics:
    """Score every evaluated user once and compute the protocol's per-user metrics (see the module docstring)."""
    seen_before = model.fitted.user_items
    empty = np.empty(0)

    def score_batch(batch: slice) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Top-k columns of the batch's users; cold AUC and cold recall of those of them with cold targets."""
        rows = targets.user_rows[batch]
        scores = model.score_users(rows)
        cold_scores = scores[:, targets.cold_items]
        mask_seen(scores, seen_before[rows])
        top = top_k(scores, k)[0]
        has_cold = targets.cold_users[batch]
        if not has_cold.any():
            return top, empty, empty
        cold_relevant = targets.relevant[batch][:, targets.cold_items].toarray() > 0
        cold_scores, cold_relevant = cold_scores[has_cold], cold_relevant[has_cold]
        cold_top = top_k(cold_scores, k)[0]
        cold_hits = np.take_along_axis(cold_relevant, cold_top, axis=1)
        return top, ranking_auc(cold_scores, cold_relevant), recall_at_k(cold_hits, cold_relevant.sum(axis=1))

    batches = in_batches(score_batch, targets.n_users)
    top_items = np.concatenate([top for top, _, _ in batches]) if batches else np.empty((0, k), dtype=np.int64)
    hits = top_k_hits(top_items, targets.relevant)
    n_relevant = np.diff(targets.relevant.indptr)
    return UserMetrics(
        ndcg=ndcg_at_k(hits, n_relevant),
        recall=recall_at_k(hits, n_relevant),
        average_precision=average_precision_at_k(hits, n_relevant),
        precision=precision_at_k(hits),
        top_items=top_items,
        cold_auc=np.concatenate([auc for _, auc, _ in batches]) if batches else empty,
        cold_recall=np.concatenate([recall for _, _, recall in batches]) if batches else empty,
        n_items=model.fitted.n_items,
    )


def mean_ndcg(scores: np.ndarray, seen: sparse.csr_matrix, relevant: sparse.csr_matrix, k: int = K) -> float:
    """Mean NDCG@k of a (users × items) score matrix against ``relevant``; ``seen`` is masked in place."""
    mask_seen(scores, seen)
    hits = top_k_hits(top_k(scores, k)[0], relevant)
    return float(ndcg_at_k(hits, np.diff(relevant.indptr)).mean())


def _bootstrap_means(names: list[str], per_user: np.ndarray, n_resamples: int, seed: int) -> dict[str, dict]:
    """Mean of each column of (users × metrics) values with its percentile-bootstrap interval over users."""
    if len(per_user) == 0:
        return {name: {"value": None, "ci95": None} for name in names}
    low, high = bootstrap_ci(len(per_user), lambda counts: counts @ per_user / len(per_user), n_resamples, seed)
    return {
        name: {"value": float(value), "ci95": [float(lo), float(hi)]}
        for name, value, lo, hi in zip(names, per_user.mean(axis=0), low, high, strict=True)
    }
