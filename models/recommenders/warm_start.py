"""Warm starts: a night's ALS refit begins from the previous night's factors instead of random ones.

One more day of events barely moves a converged factorisation, so a refit that starts from yesterday's factors
needs one or two ALS iterations, not fifteen (10M events: the same NDCG@10 on the next week; BENCHMARKS §2).
:class:`Factors` carries the factors with the ids of their rows (users and items come and go between nights);
:class:`FactorStore` keeps the newest few nights' factors under the data root, one ``<run date>.npz`` each, and
hands a night the newest factors of an *earlier* night, so a re-run of a night starts where its first run did.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np

from shopflow.models.interactions import InteractionMatrix, positions

log = logging.getLogger(__name__)

KEEP_NIGHTS = 2  # factor files kept: the newest night and the one before (a re-run of the newest starts from it)


@dataclass(frozen=True)
class Factors:
    """A fitted factorisation: user and item factors with the ids of their rows.

    ``shape`` names what gives the factors their meaning (family and hyper-parameters other than the iteration
    count): a model starts only from factors of the same shape.
    """

    fitted_on: date  # the run date of the night that fitted them
    shape: dict
    user_ids: np.ndarray
    item_ids: np.ndarray
    user_factors: np.ndarray  # float32, one row per user id
    item_factors: np.ndarray  # float32, one row per item id

    def aligned_to(self, matrix: InteractionMatrix) -> tuple[np.ndarray, np.ndarray]:
        """(user factors, item factors) for the rows and columns of ``matrix``; users and items these factors do
        not know start at zero (ALS solves them in its first half-iteration)."""
        return (
            _aligned(matrix.user_ids, self.user_ids, self.user_factors),
            _aligned(matrix.item_ids, self.item_ids, self.item_factors),
        )

    def save(self, path: Path) -> Path:
        """Write the factors to ``path`` (npz, whatever its name: it is not given an ``.npz`` suffix)."""
        with open(path, "wb") as file:
            np.savez(
                file,
                fitted_on=np.array(self.fitted_on.isoformat()),
                shape=np.array(json.dumps(self.shape, sort_keys=True)),
                user_ids=self.user_ids.astype(str),
                item_ids=self.item_ids.astype(str),
                user_factors=self.user_factors,
                item_factors=self.item_factors,
            )
        return path

    @classmethod
    def load(cls, path: Path) -> Factors:
        with np.load(path, allow_pickle=False) as saved:
            return cls(
                fitted_on=date.fromisoformat(str(saved["fitted_on"])),
                shape=json.loads(str(saved["shape"])),
                user_ids=saved["user_ids"],
                item_ids=saved["item_ids"],
                user_factors=saved["user_factors"],
                item_factors=saved["item_factors"],
            )


@dataclass(frozen=True)
class WarmStart:
    """Start a fit from ``factors`` and run ``iterations`` iterations instead of the model's own count."""

    factors: Factors
    iterations: int


@dataclass(frozen=True)
class FactorStore:
    """The newest nights' factors, one ``<run date>.npz`` per night in ``directory``."""

    directory: Path

    def latest_before(self, run_date: date) -> Factors | None:
        """The newest factors fitted on a night before ``run_date``, or None. They are a cache: a file that cannot
        be read is logged and skipped (the fit then starts from random factors), it never fails a night."""
        earlier = sorted(path for path in self.directory.glob("*.npz") if path.stem < run_date.isoformat())
        if not earlier:
            return None
        try:
            return Factors.load(earlier[-1])
        except (OSError, ValueError, KeyError) as error:
            log.warning("warm start: cannot read %s (%s); fitting from random factors", earlier[-1], error)
            return None

    def keep(self, factors: Factors) -> Path:
        """Store ``factors`` as their night's file (replacing a re-run's, atomically) and delete all but the newest
        ``KEEP_NIGHTS`` files."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{factors.fitted_on.isoformat()}.npz"
        partial = factors.save(path.with_name(f"{path.name}.partial"))  # a crash leaves this, never half an .npz
        os.replace(partial, path)
        for old in sorted(self.directory.glob("*.npz"))[:-KEEP_NIGHTS]:
            old.unlink()
        return path


def _aligned(ids: np.ndarray, known_ids: np.ndarray, factors: np.ndarray) -> np.ndarray:
    rows = positions(known_ids, ids)
    aligned = np.zeros((len(ids), factors.shape[1]), dtype=np.float32)
    aligned[rows >= 0] = factors[rows[rows >= 0]]
    return aligned
