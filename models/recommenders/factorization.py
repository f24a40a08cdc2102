"""Matrix factorisation with ``implicit`` (CPU): ALS (Hu, Koren & Volinsky 2008) and BPR (Rendle et al. 2009).

Both score ``u · v_i`` with factors learnt by ``implicit`` and save/load with implicit's own ``.npz`` format
(``implicit.cpu.als.AlternatingLeastSquares.load``: the ``implicit.als.AlternatingLeastSquares`` factory has no
``load``). BLAS is pinned to one thread while fitting (implicit is up to 10× slower otherwise); BPR trains on one
thread so that a re-run of the same night gives the same factors (its multi-threaded SGD is not deterministic).

``als_text`` is ALS plus a ridge map from item text embedding to ALS item factors, fitted on the items with
interactions; items without any (cold products) get their factors from the map, so they can be recommended.
"""

from __future__ import annotations

import importlib
from abc import abstractmethod
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from shopflow.models.recommenders.base import Recommender, register
from shopflow.models.recommenders.warm_start import Factors

IMPLICIT_FILE = "implicit.npz"


class ImplicitFactorization(Recommender):
    """A recommender whose scores are dot products of factors trained by an ``implicit`` CPU model."""

    implicit_class: ClassVar[str]  # "module:Class" of the implicit CPU model, used to build and to load it

    @abstractmethod
    def _implicit_arguments(self) -> dict[str, Any]:
        """Constructor arguments of ``implicit_class`` for these hyper-parameters."""

    def _fit(self) -> None:
        from threadpoolctl import threadpool_limits

        start = self._warm_start
        if start is not None and start.factors.shape != self._factor_shape():
            start = None
        arguments = self._implicit_arguments() | ({"iterations": start.iterations} if start is not None else {})
        with threadpool_limits(limits=1, user_api="blas"):
            self.model = _implicit_type(self.implicit_class)(**arguments)
            if start is not None:
                self.model.user_factors, self.model.item_factors = start.factors.aligned_to(self.fitted)
            self.model.fit(self.fitted.user_items, show_progress=False)
        self.warm_started_from = start.factors.fitted_on if start is not None else None

    def _factor_shape(self) -> dict | None:
        """What gives this model's factors their meaning (compared with a warm start's); None: it cannot start from
        earlier factors."""
        return None

    def score_users(self, user_rows: np.ndarray) -> np.ndarray:
        return self.model.user_factors[user_rows] @ self.model.item_factors.T

    def score_similar(self, item_columns: np.ndarray) -> np.ndarray:
        factors = self.model.item_factors
        norms = np.linalg.norm(factors, axis=1)
        unit = factors / np.where(norms > 0, norms, 1.0)[:, None]
        return unit[item_columns] @ unit.T

    def _save_state(self, directory: Path) -> None:
        self.model.save(str(directory / IMPLICIT_FILE))

    def _load_state(self, directory: Path) -> None:
        self.model = _implicit_type(self.implicit_class).load(str(directory / IMPLICIT_FILE))


@register
class AlsRecommender(ImplicitFactorization):
    """Implicit-feedback ALS on the confidence matrix (confidence = alpha · weight), conjugate-gradient solver."""

    name = "als"
    implicit_class = "implicit.cpu.als:AlternatingLeastSquares"

    @dataclass(frozen=True)
    class Params:
        factors: int = 64
        regularization: float = 0.05
        alpha: float = 1.0  # scales the interaction weights into confidences
        iterations: int = 15
        random_state: int = 42

    param_grid = {"factors": (64, 128), "alpha": (0.25, 1.0)}

    def _factor_shape(self) -> dict:
        params = {key: value for key, value in asdict(self.params).items() if key != "iterations"}
        return {"family": self.name, **params}

    def fitted_factors(self, fitted_on: date) -> Factors:
        matrix = self.fitted
        return Factors(
            fitted_on,
            self._factor_shape(),
            matrix.user_ids,
            matrix.item_ids,
            self.model.user_factors,
            self.model.item_factors,
        )

    def _implicit_arguments(self) -> dict[str, Any]:
        return {
            "factors": self.params.factors,
            "regularization": self.params.regularization,
            "alpha": self.params.alpha,
            "iterations": self.params.iterations,
            "random_state": self.params.random_state,
            "num_threads": 0,
        }


@register
class BprRecommender(ImplicitFactorization):
    """BPR-MF: pairwise ranking loss with sampled negatives (item factors carry a bias column)."""

    name = "bpr"
    implicit_class = "implicit.cpu.bpr:BayesianPersonalizedRanking"

    @dataclass(frozen=True)
    class Params:
        factors: int = 64
        learning_rate: float = 0.01
        regularization: float = 0.01
        iterations: int = 100
        random_state: int = 42

    param_grid = {"learning_rate": (0.005, 0.01)}
    concurrent_grid = True  # one thread per fit (deterministic), so the grid's fits share the cores

    def _implicit_arguments(self) -> dict[str, Any]:
        return {
            "factors": self.params.factors,
            "learning_rate": self.params.learning_rate,
            "regularization": self.params.regularization,
            "iterations": self.params.iterations,
            "random_state": self.params.random_state,
            "num_threads": 1,
        }


@register
class TextMappedAlsRecommender(AlsRecommender):
    """ALS whose cold items (no interactions) get factors ``[e_i, 1] · W`` from their text embedding ``e_i``.

    ``W`` is ridge regression (penalty ``text_l2``) from the warm items' embeddings to their ALS factors.
    """

    name = "als_text"
    uses_text = True

    @dataclass(frozen=True)
    class Params(AlsRecommender.Params):
        text_l2: float = 10.0  # ridge penalty of the text → factor map

    param_grid = {}  # ALS's tuned parameters, as they are
    depends_on = ("als",)

    @classmethod
    def base_params_from(cls, tuned: dict[str, dict]) -> dict[str, Any]:
        return dict(tuned.get("als", {}))

    def _fit(self) -> None:
        super()._fit()
        warm = self.fitted.item_user_counts() > 0
        features = np.hstack([self.item_embeddings, np.ones((len(warm), 1), dtype=np.float32)])
        text_map = ridge(features[warm], self.model.item_factors[warm], self.params.text_l2)
        self.model.item_factors[~warm] = features[~warm] @ text_map


def ridge(features: np.ndarray, targets: np.ndarray, l2: float) -> np.ndarray:
    """Least-squares ``W`` minimising ‖features · W − targets‖² + l2 · ‖W‖²."""
    gram = features.T @ features + l2 * np.eye(features.shape[1], dtype=features.dtype)
    return np.linalg.solve(gram, features.T @ targets).astype(targets.dtype)


def _implicit_type(path: str) -> type:
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)
