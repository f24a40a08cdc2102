"""Model-version retention: every night registers a version (about 200 MB at 10M events); this removes old ones.

Kept: every version with an alias (``champion``, ``challenger`` or any alias set in the MLflow UI), the newest
``registry_keep_latest`` versions, and the champion's last ``registry_rollback_depth`` predecessors along
``champion.previous`` (what ``shopflow models rollback`` walks back through). Every other version is deleted from
the registry together with its logged model and that model's artifacts. The nightly runs that logged them (params,
metrics, plots, ``metrics.json``) and ``marts.model_decisions`` stay, so history stays queryable.

A prune interrupted between deleting a version and its artifacts leaves a logged model in the ``deleted`` stage;
``mlflow gc`` removes such leftovers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse
from urllib.request import url2pathname

from shopflow.registry.champion import PREVIOUS_CHAMPION_TAG
from shopflow.registry.tracking import CHAMPION, RECOMMENDER_MODEL_NAME, mlflow_client, recommender_versions
from shopflow.settings import Settings

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion


@dataclass(frozen=True)
class PruneReport:
    """What a prune kept and deleted (version numbers, ascending) and the artifact bytes it freed (or would free)."""

    kept: list[str]
    deleted: list[str]
    freed_bytes: int

    def to_dict(self) -> dict:
        return asdict(self)


def retained_versions(
    previous_champion: Mapping[str, str | None],
    aliased: set[str],
    champion: str | None,
    keep_latest: int,
    rollback_depth: int,
) -> set[str]:
    """The versions to keep (module doc) among ``previous_champion``'s keys.

    ``previous_champion`` maps every registered version to the champion it replaced (its ``champion.previous``
    tag; None if it never replaced one); ``aliased`` holds the versions that carry any alias.
    """
    newest = sorted(previous_champion, key=int, reverse=True)[:keep_latest]
    kept = set(newest) | (aliased & previous_champion.keys())
    version = champion
    for _ in range(rollback_depth):
        version = previous_champion.get(version)
        if version not in previous_champion:  # no predecessor, or one already deleted
            break
        kept.add(version)
    return kept


def prune_model_versions(settings: Settings, dry_run: bool = False) -> PruneReport:
    """Delete the versions :func:`retained_versions` does not keep, with their logged models and artifacts."""
    client = mlflow_client(settings)
    versions = {str(v.version): v for v in recommender_versions(client)}
    if not versions:  # nothing registered yet (the registered model itself may not exist)
        return PruneReport([], [], 0)
    aliases = client.get_registered_model(RECOMMENDER_MODEL_NAME).aliases
    champion = aliases.get(CHAMPION)
    kept = retained_versions(
        {number: version.tags.get(PREVIOUS_CHAMPION_TAG) for number, version in versions.items()},
        {str(number) for number in aliases.values()},
        str(champion) if champion is not None else None,
        settings.registry_keep_latest,
        settings.registry_rollback_depth,
    )
    kept_models = {logged_model_id(versions[number]) for number in kept}
    doomed = sorted(versions.keys() - kept, key=int)
    freed = 0
    for number in doomed:
        model_id = logged_model_id(versions[number])
        owned = model_id is not None and model_id not in kept_models  # a logged model no kept version uses
        location = client.get_logged_model(model_id).artifact_location if owned else None
        freed += _local_bytes(location)
        if not dry_run:
            client.delete_model_version(RECOMMENDER_MODEL_NAME, number)
            if location is not None:
                _delete_logged_model(client, model_id, location)
    return PruneReport(sorted(kept, key=int), doomed, freed)


def logged_model_id(version: ModelVersion) -> str | None:
    """The id of the logged model a version was registered from (its source ``models:/m-...``), if any."""
    if version.model_id:
        return version.model_id
    source = version.source or ""
    return source.removeprefix("models:/") if source.startswith("models:/m-") else None


def _delete_logged_model(client: MlflowClient, model_id: str, location: str) -> None:
    """Mark the logged model deleted, then remove its artifacts at ``location`` (what ``mlflow gc`` would do).

    In a local store the model's own folder (``models/<model_id>``, which held only the artifacts) goes too.
    """
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    client.delete_logged_model(model_id)
    get_artifact_repository(location).delete_artifacts()
    folder = _local_folder(location)
    if folder is not None and folder.parent.name == model_id and not any(folder.parent.iterdir()):
        folder.parent.rmdir()


def _local_bytes(location: str | None) -> int:
    """Size of the artifacts at ``location`` when they are local files (0 for none or a remote store)."""
    folder = _local_folder(location)
    return 0 if folder is None else sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def _local_folder(location: str | None) -> Path | None:
    """The folder of a ``file:`` (or plain path) artifact location; None for none or a remote store."""
    if location is None:
        return None
    parsed = urlparse(location)
    return Path(url2pathname(parsed.path)) if parsed.scheme in ("", "file") else None
