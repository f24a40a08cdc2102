"""Where MLflow keeps its state: a SQLite backend and a local artifact root, both under the data root.

Never the deprecated ``./mlruns`` file store (refused by MLflow >= 3.13 without ``MLFLOW_ALLOW_FILE_STORE``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shopflow.settings import Settings

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

EXPERIMENT_NAME = "shopflow-nightly"
RECOMMENDER_MODEL_NAME = "shopflow-recommender"
CHAMPION = "champion"
CHALLENGER = "challenger"


def tracking_uri(settings: Settings) -> str:
    """SQLite URI of the tracking and registry database (``<mlflow_dir>/mlflow.db``)."""
    return f"sqlite:///{settings.mlflow_dir / 'mlflow.db'}"


def artifact_root(settings: Settings) -> str:
    """``file://`` URI of the folder that holds every run's artifacts and logged models."""
    return (settings.mlflow_dir / "artifacts").as_uri()


def mlflow_client(settings: Settings) -> MlflowClient:
    """Point MLflow (tracking and registry) at the data root's store and return a client; creates nothing else."""
    import mlflow

    settings.mlflow_dir.mkdir(parents=True, exist_ok=True)
    uri = tracking_uri(settings)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def open_tracking_store(settings: Settings) -> None:
    """Open the data root's tracking and registry stores now (creating their tables on first use), so that later
    calls in this process find them open: the first open costs ~1 s on the 2-core box, ~2 s when it creates them."""
    client = mlflow_client(settings)
    client.search_experiments(max_results=1)
    client.search_registered_models(max_results=1)


def nightly_experiment_id(settings: Settings) -> str:
    """The nightly pipeline's one experiment (created on first use with its artifact root under the data root)."""
    client = mlflow_client(settings)
    experiment = client.get_experiment_by_name(EXPERIMENT_NAME)
    if experiment is not None:
        return experiment.experiment_id
    return client.create_experiment(EXPERIMENT_NAME, artifact_location=artifact_root(settings))


def ensure_registered_model(client: MlflowClient) -> None:
    """Create ``shopflow-recommender`` in the registry if it does not exist yet."""
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(RECOMMENDER_MODEL_NAME)
    except MlflowException:
        client.create_registered_model(
            RECOMMENDER_MODEL_NAME,
            description="The shop's recommender: one version per night; @champion feeds marts.recommendations.",
        )


def recommender_versions(client: MlflowClient) -> list[ModelVersion]:
    """Every registered version of ``shopflow-recommender``, with its tags (search results carry no aliases)."""
    return list(client.search_model_versions(f"name = '{RECOMMENDER_MODEL_NAME}'"))
