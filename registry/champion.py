"""Moving the ``champion`` alias, with the bookkeeping that makes a rollback possible.

Each version that becomes champion by a promotion remembers the champion it replaced (tag
``champion.previous``); a rollback follows that tag and does not overwrite it, so repeated rollbacks walk back
through the history. Every move is also a row of ``marts.model_decisions``.
"""

from __future__ import annotations

import getpass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from shopflow.models.selection import RecommenderConfig
from shopflow.registry.decisions import record_decision
from shopflow.registry.gate import PromotionDecision
from shopflow.registry.tracking import CHAMPION, RECOMMENDER_MODEL_NAME, mlflow_client
from shopflow.settings import Settings

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

PREVIOUS_CHAMPION_TAG = "champion.previous"


def champion_version(client: MlflowClient) -> ModelVersion | None:
    """The version the ``champion`` alias points at, or None before the first promotion."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(RECOMMENDER_MODEL_NAME, CHAMPION)
    except MlflowException:
        return None


def apply_decision(settings: Settings, client: MlflowClient, decision: PromotionDecision) -> None:
    """Point ``champion`` at ``decision.champion_after`` (when it changes) and record the decision.

    Promotions remember the replaced champion on the new one; rollbacks (``action == "rollback"``) do not.
    """
    if decision.promoted and decision.champion_after is not None:
        client.set_registered_model_alias(RECOMMENDER_MODEL_NAME, CHAMPION, decision.champion_after)
        tags = {
            "champion.since": datetime.now(UTC).isoformat(timespec="seconds"),
            "champion.action": decision.action,
            "champion.run_date": decision.run_date.isoformat(),
            "champion.reason": decision.reason,
            "champion.decided_by": getpass.getuser(),
        }
        if decision.action != "rollback" and decision.champion_before is not None:
            tags[PREVIOUS_CHAMPION_TAG] = decision.champion_before
        for key, value in tags.items():
            client.set_model_version_tag(RECOMMENDER_MODEL_NAME, decision.champion_after, key, value)
    record_decision(settings, decision, RECOMMENDER_MODEL_NAME)


def champion_config(settings: Settings) -> RecommenderConfig | None:
    """The ``@champion``'s family and parameters, for the recommender stage to refit (None: no usable champion)."""
    champion = champion_version(mlflow_client(settings))
    if champion is None:
        return None
    try:
        return RecommenderConfig.from_tags(champion.tags)
    except (KeyError, TypeError, ValueError):
        return None
