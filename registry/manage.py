"""What ML engineers do by hand (``shopflow models ...``): list and inspect versions, promote, roll back.

Manual promotions and rollbacks are decisions like the nightly gate's: recorded in ``marts.model_decisions``
and in the version's ``champion.*`` tags, with who made them and why. They take effect at the next
:func:`~shopflow.registry.nightly.write_champion_recommendations` (the next night, before publish).
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from shopflow.registry.champion import PREVIOUS_CHAMPION_TAG, apply_decision, champion_version
from shopflow.registry.gate import PromotionDecision
from shopflow.registry.lineage import LINEAGE_TAGS
from shopflow.registry.tracking import RECOMMENDER_MODEL_NAME, mlflow_client, recommender_versions
from shopflow.settings import Settings

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

LISTED_TAGS = (
    "model_version",
    "recommender.family",
    "holdout.ndcg_at_10",
    "gate.outcome",
    "lineage.run_date",
    "lineage.data_snapshot_id",
    "lineage.validation_passed",
    "lineage.code_revision",
)


def list_versions(settings: Settings) -> list[dict]:
    """Every registered version, newest first: aliases, key metrics and lineage (:data:`LISTED_TAGS`)."""
    client = mlflow_client(settings)
    versions = recommender_versions(client)
    if not versions:
        return []
    aliases = client.get_registered_model(RECOMMENDER_MODEL_NAME).aliases  # search results carry none
    return [
        {
            "version": str(v.version),
            "aliases": ",".join(sorted(alias for alias, aliased in aliases.items() if str(aliased) == str(v.version))),
        }
        | {tag: v.tags.get(tag, "") for tag in LISTED_TAGS}
        for v in sorted(versions, key=lambda v: int(v.version), reverse=True)
    ]


def show_version(settings: Settings, version: str) -> dict:
    """One version in full: aliases, every tag, its MLflow run's parameters and metrics, where it is stored."""
    client = mlflow_client(settings)
    found = client.get_model_version(RECOMMENDER_MODEL_NAME, version)
    run = client.get_run(found.run_id) if found.run_id else None
    return {
        "name": RECOMMENDER_MODEL_NAME,
        "version": str(found.version),
        "aliases": sorted(found.aliases),
        "source": found.source,
        "model_uri": f"models:/{RECOMMENDER_MODEL_NAME}/{found.version}",
        "lineage": {tag: found.tags.get(tag) for tag in LINEAGE_TAGS},
        "tags": dict(sorted(found.tags.items())),
        "run": {
            "run_id": found.run_id,
            "params": dict(sorted(run.data.params.items())) if run else {},
            "metrics": dict(sorted(run.data.metrics.items())) if run else {},
        },
    }


def promote_version(settings: Settings, version: str, reason: str) -> PromotionDecision:
    """Make ``version`` the champion by hand, recorded with ``reason``; the replaced one stays reachable by rollback."""
    if not reason.strip():
        raise ValueError("a manual promotion needs a reason")
    client = mlflow_client(settings)
    target = _existing_version(client, version, "promote")
    current = champion_version(client)
    decision = PromotionDecision(
        date.today(), "manual_promote", "manual", str(target.version), str(current.version) if current else None,
        str(target.version), reason=reason,
    )  # fmt: skip
    apply_decision(settings, client, decision)
    return decision


def rollback_champion(settings: Settings, reason: str = "rollback") -> PromotionDecision:
    """Point ``champion`` back at the champion the current one replaced (tag ``champion.previous``)."""
    client = mlflow_client(settings)
    current = champion_version(client)
    if current is None:
        raise LookupError(f"{RECOMMENDER_MODEL_NAME} has no champion to roll back")
    previous = current.tags.get(PREVIOUS_CHAMPION_TAG)
    if not previous:
        raise LookupError(f"v{current.version} replaced no earlier champion: nothing to roll back to")
    _existing_version(client, previous, "roll back to")
    decision = PromotionDecision(
        date.today(), "rollback", "rolled_back", None, str(current.version), previous, reason=reason,
    )  # fmt: skip
    apply_decision(settings, client, decision)
    return decision


def _existing_version(client: MlflowClient, version: str, action: str) -> ModelVersion:
    """The registered ``version``, or a LookupError saying it does not exist (never registered, or pruned)."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version(RECOMMENDER_MODEL_NAME, version)
    except MlflowException as missing:
        if missing.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        raise LookupError(
            f"cannot {action} v{version}: no such version of {RECOMMENDER_MODEL_NAME} (never registered, or deleted by"
            " retention: SHOPFLOW_REGISTRY_KEEP_LATEST, SHOPFLOW_REGISTRY_ROLLBACK_DEPTH)"
        ) from missing
