"""Hyper-parameter search on the validation split: every grid point fitted on the fit window, scored by NDCG@10.

Only the validation window is used here; the holdout is never seen while choosing parameters.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import numpy as np

from shopflow.models.evaluation import EvaluationTargets, evaluate
from shopflow.models.interactions import InteractionMatrix
from shopflow.models.recommenders import Recommender, recommender_class
from shopflow.runners import map_in_threads


@dataclass(frozen=True)
class TuningResult:
    """The chosen hyper-parameters of one family, every trial (params, validation NDCG@10 and cold AUC), the model."""

    name: str
    params: dict
    validation_ndcg: float
    trials: list[dict]
    seconds: float
    model: Recommender = field(repr=False, compare=False)  # fitted on the fit window with ``params``


def grid_points(grid: dict[str, tuple]) -> list[dict]:
    """Every combination of the grid's values ([{}] for an empty grid)."""
    names = list(grid)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*(grid[name] for name in names))]


def tuning_order(names: list[str]) -> list[str]:
    """``names`` reordered so that every family comes after the ``depends_on`` families it is listed with."""
    ordered: list[str] = []

    def visit(name: str) -> None:
        if name in ordered:
            return
        for dependency in recommender_class(name).depends_on:
            if dependency in names:
                visit(dependency)
        ordered.append(name)

    for name in names:
        visit(name)
    return ordered


def tune_recommender(
    name: str,
    fit_matrix: InteractionMatrix,
    validation: EvaluationTargets,
    item_embeddings: np.ndarray | None,
    tuned: dict[str, dict],
    reuse: Mapping[str, Recommender] | None = None,
) -> TuningResult:
    """Grid-search family ``name`` (starting from ``tuned`` dependencies), keeping the best validation NDCG@10.

    ``reuse``: models already fitted on ``fit_matrix`` (see :meth:`Recommender.fit`).
    """
    started = time.perf_counter()
    cls = recommender_class(name)
    base = cls.base_params_from(tuned)
    trials, best_model, best_ndcg = [], None, -1.0

    def fit(point: dict) -> Recommender:
        return cls(**base, **point).fit(fit_matrix, item_embeddings, reuse)

    points = grid_points(cls.param_grid)
    models = map_in_threads(fit, points) if cls.concurrent_grid else map(fit, points)
    for model in models:
        model.tune_post_fit(validation)
        metrics = evaluate(model, validation)
        ndcg = float(metrics.ndcg.mean())
        cold_auc = float(metrics.cold_auc.mean()) if len(metrics.cold_auc) else None
        trials.append({"params": asdict(model.params), "ndcg@10": ndcg, "cold_auc": cold_auc})
        if ndcg > best_ndcg:
            best_model, best_ndcg = model, ndcg
    seconds = round(time.perf_counter() - started, 2)
    return TuningResult(name, asdict(best_model.params), best_ndcg, trials, seconds, best_model)
