"""Metric functions against hand-computed values (the arithmetic is in the comments)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from shopflow.models.metrics import (
    NO_ITEM,
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

# user A: top-5 [3, 1, 7, 2, 9], relevant {1, 2, 5} → hits at ranks 2 and 4
# user B: top-5 [4, 5, 6, 8, 0], relevant {4}       → hit at rank 1
TOP = np.array([[3, 1, 7, 2, 9], [4, 5, 6, 8, 0]])
RELEVANT = sparse.csr_matrix(([1.0, 1.0, 1.0, 1.0], ([0, 0, 0, 1], [1, 2, 5, 4])), shape=(2, 20))
N_RELEVANT = np.array([3, 1])


@pytest.fixture
def hits() -> np.ndarray:
    return top_k_hits(TOP, RELEVANT)


def test_hits(hits: np.ndarray) -> None:
    assert hits.tolist() == [[False, True, False, True, False], [True, False, False, False, False]]


def test_precision_at_k(hits: np.ndarray) -> None:
    # A: 2 hits / k=5 = 0.4; B: 1 / 5 = 0.2
    np.testing.assert_allclose(precision_at_k(hits), [0.4, 0.2])


def test_recall_at_k(hits: np.ndarray) -> None:
    # A: 2 hits / |R|=3; B: 1 / 1
    np.testing.assert_allclose(recall_at_k(hits, N_RELEVANT), [2 / 3, 1.0])


def test_average_precision_at_k(hits: np.ndarray) -> None:
    # A: (P@2 = 1/2 + P@4 = 2/4) / min(5, 3) = 1/3; B: P@1 = 1 / min(5, 1) = 1
    np.testing.assert_allclose(average_precision_at_k(hits, N_RELEVANT), [1 / 3, 1.0])


def test_ndcg_at_k(hits: np.ndarray) -> None:
    # A: DCG = 1/log2(3) + 1/log2(5) = 0.630930 + 0.430677 = 1.061606
    #    IDCG = 1/log2(2) + 1/log2(3) + 1/log2(4) = 1 + 0.630930 + 0.5 = 2.130930 → 1.061606 / 2.130930 = 0.498189
    # B: DCG = IDCG = 1 → 1
    np.testing.assert_allclose(ndcg_at_k(hits, N_RELEVANT), [0.498189, 1.0], atol=1e-6)


def test_padding_is_never_a_hit_and_precision_still_divides_by_k() -> None:
    # the list holds only 2 items (a catalogue smaller than k): 1 hit / k=3
    top = np.array([[1, 0, NO_ITEM]])
    relevant = sparse.csr_matrix(np.array([[1.0, 0.0]]))
    hits = top_k_hits(top, relevant)
    assert hits.tolist() == [[False, True, False]]
    np.testing.assert_allclose(precision_at_k(hits), [1 / 3])


def test_catalogue_coverage() -> None:
    # listed items {3,1,7,2,9,4,5,6,8,0}: 10 of 20
    assert catalogue_coverage(TOP, 20) == 0.5


def test_coverage_jackknife_interval() -> None:
    # A [0, 1], B [0, 2], C [0, 1] of 10 items: coverage {0, 1, 2} = 0.3; only B lists item 2
    # leave one out: A 0.3, B 0.2, C 0.3 → mean 0.266667, Σ(dev²) = 0.001111 + 0.004444 + 0.001111 = 0.006667
    # SE = sqrt(2/3 · 0.006667) = 0.066667 → 0.3 ± 1.959964 · 0.066667 = 0.3 ± 0.130664
    low, high = coverage_jackknife_ci(np.array([[0, 1], [0, 2], [0, 1]]), 10)
    np.testing.assert_allclose([low, high], [0.169336, 0.430664], atol=1e-6)


def test_ranking_auc_counts_ties_as_half() -> None:
    # positives score 0.9 and 0.5, negatives 0.5 and 0.1: pairs (0.9>0.5) 1, (0.9>0.1) 1, (0.5=0.5) ½, (0.5>0.1) 1
    # → 3.5 / 4 = 0.875; all-equal scores → 0.5; no negative → undefined (NaN)
    scores = np.array([[0.9, 0.5, 0.5, 0.1], [1.0, 1.0, 1.0, 1.0], [0.3, 0.2, 0.1, 0.0]])
    positive = np.array([[True, False, True, False], [True, False, False, False], [True, True, True, True]])
    result = ranking_auc(scores, positive)
    np.testing.assert_allclose(result[:2], [0.875, 0.5])
    assert np.isnan(result[2])


def test_bootstrap_interval_contains_the_point_estimate() -> None:
    values = np.random.default_rng(1).exponential(size=500)
    low, high = bootstrap_ci(len(values), lambda counts: counts @ values / len(values))
    assert low[0] < values.mean() < high[0]
    assert high[0] - low[0] < 0.5  # about ±2 standard errors of the mean (sd 1 / √500 ≈ 0.045)


def test_bootstrap_of_a_constant_is_that_constant_and_draws_are_reproducible() -> None:
    constant = np.full(50, 0.25)
    low, high = bootstrap_ci(50, lambda counts: counts @ constant / 50)
    np.testing.assert_allclose([low[0], high[0]], [0.25, 0.25])
    values = np.arange(50.0)
    first = bootstrap_ci(50, lambda counts: counts @ values / 50, seed=3)
    second = bootstrap_ci(50, lambda counts: counts @ values / 50, seed=3)
    np.testing.assert_array_equal(first, second)
