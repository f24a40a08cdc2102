"""The promotion gate: is tonight's challenger better than the champion on tonight's holdout?

Both models are judged on the *same* holdout of the night (:mod:`shopflow.models.evaluation`): the challenger's
per-user NDCG@10 comes from the recommender stage (its family and tuned parameters refitted on the train window
and scored once on the holdout); the champion's family and parameters are refitted on the same train window
and scored on the same users. (The champion's saved fit cannot be scored directly: it was trained on days that
are inside tonight's holdout.) The difference is paired user by user, and its 95 % interval is the evaluation
module's percentile bootstrap with the same resamples and seed.

Rule: promote when the mean gain is at least ``margin`` (``Settings.promotion_margin_ndcg``) *and* the whole
interval lies above zero (no loss, no tie), and only when the night's audit passed. Otherwise, on an audited
night, the champion's *configuration* is kept: the verdict ("kept") is about family and parameters, so what
serves tonight is that configuration fitted on every event up to tonight, registered as a new version that
becomes champion ("kept_refitted"; it remembers the replaced version, so a rollback returns to it). The old
fit would not know tonight's interactions: it would recommend products bought since its night and nothing to
users new since then. After a failed audit nothing is fitted: the champion stays as it is. A challenger with exactly
the champion's family and parameters is a refit of the champion on newer data: it replaces it ("refreshed")
without a comparison, which would be a tie by construction. A champion this code cannot rebuild (its family
was removed or its family version bumped) could not be published either: the challenger replaces it
("champion_not_comparable").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date

import numpy as np

from shopflow.models.evaluation import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, EvaluationTargets, evaluate
from shopflow.models.interactions import InteractionMatrix
from shopflow.models.metrics import bootstrap_ci
from shopflow.models.recommenders import create_recommender
from shopflow.models.selection import RecommenderConfig

# outcomes of a nightly decision (the first group moves the champion alias)
FIRST_CHAMPION = "first_champion"
PROMOTED = "promoted"
REFRESHED = "refreshed"
KEPT_REFITTED = "kept_refitted"
CHAMPION_NOT_COMPARABLE = "champion_not_comparable"
KEPT = "kept"  # the comparison's verdict; an audited night publishes it as KEPT_REFITTED once the refit exists
AUDIT_FAILED = "audit_failed"
ALREADY_CHAMPION = "already_champion"
NIGHT_ALREADY_DECIDED = "night_already_decided"
PROMOTING_OUTCOMES = (FIRST_CHAMPION, PROMOTED, REFRESHED, KEPT_REFITTED, CHAMPION_NOT_COMPARABLE)


@dataclass(frozen=True)
class PairedComparison:
    """Challenger vs champion NDCG@10 on the same users: means, mean difference and its 95 % bootstrap interval."""

    challenger_ndcg: float
    champion_ndcg: float
    delta: float
    delta_ci95: tuple[float, float]
    evaluated_users: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class PromotionDecision:
    """One decision about the champion: what was compared, the outcome and why (see the module docstring)."""

    run_date: date
    action: str  # nightly_gate, manual_promote, rollback, alias_changed_outside
    outcome: str
    challenger_version: str | None
    champion_before: str | None
    champion_after: str | None
    reason: str
    audit_passed: bool | None = None
    margin: float | None = None
    comparison: PairedComparison | None = None
    mlflow_run_id: str | None = None

    @property
    def promoted(self) -> bool:
        return self.champion_after != self.champion_before

    def to_dict(self) -> dict:
        return asdict(self) | {"run_date": self.run_date.isoformat(), "promoted": self.promoted}


def paired_ndcg_comparison(challenger: np.ndarray, champion: np.ndarray) -> PairedComparison:
    """Mean per-user NDCG@10 of both models and the bootstrap interval of the mean paired difference."""
    if challenger.shape != champion.shape or not len(challenger):
        raise ValueError(f"need per-user NDCG of the same evaluated users, got {challenger.shape} and {champion.shape}")
    difference = challenger - champion
    low, high = bootstrap_ci(
        len(difference), lambda counts: counts @ difference / len(difference), BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED
    )
    return PairedComparison(
        challenger_ndcg=float(challenger.mean()),
        champion_ndcg=float(champion.mean()),
        delta=float(difference.mean()),
        delta_ci95=(float(low[0]), float(high[0])),
        evaluated_users=len(difference),
    )


def is_better(comparison: PairedComparison, margin: float) -> bool:
    """The gate's rule: mean gain ≥ ``margin`` and the 95 % interval of the gain entirely above zero."""
    return comparison.delta >= margin and comparison.delta_ci95[0] > 0


def reevaluate_config(
    config: RecommenderConfig,
    train: InteractionMatrix,
    holdout: EvaluationTargets,
    item_embeddings: np.ndarray | None,
) -> np.ndarray:
    """Per-user holdout NDCG@10 of ``config`` refitted on ``train`` (raises if this code cannot build it)."""
    config.check_buildable()
    model = create_recommender(config.family, **config.params).fit(train, item_embeddings)
    return evaluate(model, holdout).ndcg
