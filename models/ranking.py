"""Turning score matrices into rankings: seen-item masking and deterministic top-k."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np
from scipy import sparse

from shopflow.models.metrics import NO_ITEM
from shopflow.runners import map_in_threads

BATCH_USERS = 1024  # rows scored at once per thread: bounds memory at BATCH_USERS × n_items float32 per thread
Batch = TypeVar("Batch")


def in_batches(function: Callable[[slice], Batch], count: int) -> list[Batch]:
    """``function(rows)`` for consecutive slices of ``range(count)`` of ``BATCH_USERS`` rows, in order; the slices
    are scored concurrently, one thread per usable CPU (numpy and scipy release the GIL in products and partitions)."""
    return map_in_threads(function, [slice(start, start + BATCH_USERS) for start in range(0, count, BATCH_USERS)])


def mask_seen(scores: np.ndarray, seen: sparse.csr_matrix) -> None:
    """Set (in place) the score of every stored entry of ``seen`` (rows aligned with ``scores``) to −inf."""
    rows = np.repeat(np.arange(seen.shape[0]), np.diff(seen.indptr))
    scores[rows, seen.indices] = -np.inf


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the k best columns by score (ties: lower column first) and their scores; −inf → NO_ITEM."""
    k = min(k, scores.shape[1])
    candidates = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    candidate_scores = np.take_along_axis(scores, candidates, axis=1)
    order = np.lexsort((candidates, -candidate_scores), axis=1)
    items = np.take_along_axis(candidates, order, axis=1)
    values = np.take_along_axis(candidate_scores, order, axis=1)
    items[~np.isfinite(values)] = NO_ITEM
    return items, values
