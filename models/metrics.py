"""Ranking metrics with their textbook definitions (binary relevance), per user, plus bootstrap intervals.

For one user with relevant set R and a top-k list whose position r (1-based) holds a hit ``h_r ∈ {0, 1}``:

* Precision@k = Σ h_r / k                          (k, not min(k, |R|): implicit's "precision" is not this)
* Recall@k    = Σ h_r / |R|
* AP@k        = Σ_r h_r · Precision@r / min(k, |R|) and MAP@k is its mean over users
* NDCG@k      = DCG / IDCG with DCG = Σ_r h_r / log2(r + 1) and IDCG the DCG of min(k, |R|) hits on top
* ranking AUC = P(score of a random relevant item > score of a random non-relevant one), ties count ½
  (Mann–Whitney U / (|pos| · |neg|))

Catalogue coverage = distinct items in the union of all users' top-k lists / catalogue size. Reported values
are means over users; intervals are percentile bootstrap intervals over users (users resampled with
replacement, the same draws for every model when the seed and user set are the same: paired), except for
coverage, which is not a mean over users: its interval is a delete-one-user jackknife.
"""

from __future__ import annotations

from collections.abc import Callable
from statistics import NormalDist

import numpy as np
from scipy import sparse

NO_ITEM = -1  # padding in a top-k list shorter than k


def top_k_hits(top_items: np.ndarray, relevant: sparse.csr_matrix) -> np.ndarray:
    """Boolean (users × k): whether each listed item is relevant to that row's user (padding is never a hit)."""
    n_users, k = top_items.shape
    listed = top_items != NO_ITEM
    rows = np.repeat(np.arange(n_users), k)
    hits = np.asarray(relevant[rows, np.where(listed, top_items, 0).ravel()]).reshape(n_users, k) > 0
    return hits & listed


def precision_at_k(hits: np.ndarray) -> np.ndarray:
    return hits.sum(axis=1) / hits.shape[1]


def recall_at_k(hits: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
    return hits.sum(axis=1) / n_relevant


def average_precision_at_k(hits: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
    k = hits.shape[1]
    precision_at_each_rank = np.cumsum(hits, axis=1) / np.arange(1, k + 1)
    return (precision_at_each_rank * hits).sum(axis=1) / np.minimum(k, n_relevant)


def ndcg_at_k(hits: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
    k = hits.shape[1]
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.cumsum(discounts)[np.minimum(k, n_relevant) - 1]
    return (hits * discounts).sum(axis=1) / ideal


def catalogue_coverage(top_items: np.ndarray, n_items: int) -> float:
    listed = top_items[top_items != NO_ITEM]
    return len(np.unique(listed)) / n_items


def coverage_jackknife_ci(top_items: np.ndarray, n_items: int, level: float = 0.95) -> tuple[float, float]:
    """Delete-one-user jackknife interval of catalogue coverage: coverage ± z · SE_jackknife.

    Coverage is a union over users, so a bootstrap resample (about 63 % distinct users) is biased low and its
    percentile interval can miss the estimate; leaving one user out removes exactly the items only they listed.
    """
    n_users = len(top_items)
    listed = top_items != NO_ITEM
    users_per_item = np.bincount(top_items[listed], minlength=n_items)
    only_listed_by_user = np.where(listed, users_per_item[np.where(listed, top_items, 0)] == 1, False).sum(axis=1)
    leave_one_out = (np.count_nonzero(users_per_item) - only_listed_by_user) / n_items
    standard_error = np.sqrt((n_users - 1) / n_users * ((leave_one_out - leave_one_out.mean()) ** 2).sum())
    estimate = catalogue_coverage(top_items, n_items)
    half_width = NormalDist().inv_cdf(0.5 + level / 2) * standard_error
    return estimate - half_width, estimate + half_width


def ranking_auc(scores: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """Per row of (users × candidates) scores: AUC of the ``positive`` candidates vs the rest (NaN if undefined)."""
    from scipy.stats import rankdata  # scipy.stats takes a second to import: only when ranking cold items

    ranks = rankdata(scores, axis=1, method="average")
    n_positive = positive.sum(axis=1)
    n_negative = positive.shape[1] - n_positive
    u_statistic = (ranks * positive).sum(axis=1) - n_positive * (n_positive + 1) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((n_positive > 0) & (n_negative > 0), u_statistic / (n_positive * n_negative), np.nan)


def bootstrap_ci(
    n_users: int,
    statistic: Callable[[np.ndarray], np.ndarray],
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    block: int = 100,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval of a statistic over users resampled with replacement.

    ``statistic(counts)`` receives a (resamples × n_users) matrix of multiplicities (each row a resample: how
    often each user was drawn, summing to n_users) and returns one row of values per resample; the full sample
    is ``counts = 1``. Resamples are drawn ``block`` at a time to bound memory.
    """
    rng = np.random.default_rng(seed)
    draws = []
    for start in range(0, n_resamples, block):
        rows = min(block, n_resamples - start)
        drawn = rng.integers(0, n_users, size=(rows, n_users)) + n_users * np.arange(rows)[:, None]
        counts = np.bincount(drawn.ravel(), minlength=rows * n_users).reshape(rows, n_users)  # users drawn per resample
        draws.append(np.asarray(statistic(counts)).reshape(rows, -1))
    draws = np.concatenate(draws)
    tail = (1 - level) / 2
    return np.quantile(draws, tail, axis=0), np.quantile(draws, 1 - tail, axis=0)
