"""The registry's part of the night: log, register, gate, and publish the champion's recommendations.

In the nightly flow, after the audit and :func:`~shopflow.models.pipeline.run_recommender_stage`, before publish::

    decision = register_and_promote(settings, run_date, stage_result, lineage)
    write_champion_recommendations(settings, run_date, stage_result)

:func:`register_and_promote` logs one MLflow run (experiment ``shopflow-nightly``) with the lineage tags, the
stage's parameters, every candidate's metrics, ``metrics.json`` and an evaluation plot; logs the selected
recommender as a pyfunc (:mod:`.pyfunc_model`), registers it as ``shopflow-recommender`` with the alias
``challenger``, and applies the promotion gate (:mod:`.gate`). When the gate keeps the champion's configuration,
that configuration is fitted on every event up to the night, registered as a new version (tag ``refit_of``)
and made champion, so the published recommendations always know the night's data. Re-running a night is
idempotent: the same model (same ``model_version`` label) reuses its registered version, and a night promotes
at most one champion.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from dataclasses import asdict, replace
from datetime import date, timedelta
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from shopflow.models.evaluation import BOOTSTRAP_RESAMPLES, K
from shopflow.models.interactions import InteractionMatrix
from shopflow.models.pipeline import (
    RECOMMENDATION_COLUMNS,
    RECOMMENDATIONS_PER_USER,
    TEXT_FALLBACK,
    RecommenderStageResult,
    active_users,
    model_version,
    read_inputs,
    similar_products_frame,
    write_recommendation_tables,
)
from shopflow.models.recommenders import Recommender, create_recommender
from shopflow.registry import gate
from shopflow.registry.champion import apply_decision, champion_version
from shopflow.registry.decisions import read_decisions
from shopflow.registry.gate import PairedComparison, PromotionDecision, RecommenderConfig
from shopflow.registry.lineage import NightLineage
from shopflow.registry.tracking import (
    CHALLENGER,
    CHAMPION,
    RECOMMENDER_MODEL_NAME,
    ensure_registered_model,
    mlflow_client,
    nightly_experiment_id,
    recommender_versions,
)
from shopflow.settings import Settings
from shopflow.warehouse import connect

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run
    from mlflow.entities.model_registry import ModelVersion

log = logging.getLogger(__name__)

MODEL_VERSION_TAG = "model_version"  # the stage's label, e.g. als-20260209-1a2b3c4d
REFIT_OF_TAG = "refit_of"  # on a kept champion's refit: the version whose configuration it refits
ENTRY_FILE = Path(__file__).with_name("recommender_entry.py")
INPUT_EXAMPLE_USERS = 3
PIP_REQUIREMENTS = ("mlflow", "numpy", "pandas", "scipy", "implicit")  # plus shopflow itself (this repository)


def register_and_promote(
    settings: Settings,
    run_date: date,
    stage_result: RecommenderStageResult,
    lineage: NightLineage,
) -> PromotionDecision:
    """Log the night, register its recommender as ``@challenger`` and decide the ``@champion`` (module doc).

    Evaluates on the stage's own event log and item vectors. Returns the decision (also in version tags, the
    MLflow run and ``marts.model_decisions``).
    """
    import mlflow

    if lineage.run_date != run_date or stage_result.run_date != run_date:
        raise ValueError(f"lineage ({lineage.run_date}) and stage result ({stage_result.run_date}) must be {run_date}")
    client = mlflow_client(settings)
    experiment_id = nightly_experiment_id(settings)
    ensure_registered_model(client)
    note_alias_changed_outside(settings, client, run_date)
    events, embeddings = stage_result.events, stage_result.item_embeddings

    run_tags = lineage.tags() | {"stage": "recommender", MODEL_VERSION_TAG: stage_result.model_version}
    night_run = _night_run(client, experiment_id, run_date)
    if night_run is None or night_run.data.tags.get("stage") == "recommender":  # none yet, or a re-run of the night
        night_run = client.create_run(experiment_id, run_name=f"nightly-{run_date.isoformat()}")
    with mlflow.start_run(run_id=night_run.info.run_id, tags=run_tags) as run:
        _log_stage(stage_result)
        challenger = _registered_version(client, stage_result.model_version)
        if challenger is None:
            selected = stage_result.model
            challenger = _log_and_register(
                client, selected, _text_fallback(stage_result, selected, embeddings), lineage,
                stage_result.model_version, _selected_scores(stage_result),
            )  # fmt: skip
        client.set_registered_model_alias(RECOMMENDER_MODEL_NAME, CHALLENGER, challenger.version)
        decision = _gate(settings, client, run_date, challenger, stage_result, lineage)
        if decision.outcome == gate.KEPT:
            everything = events.window(None, run_date + timedelta(days=1))
            decision = _refit_kept_champion(client, decision, everything, stage_result, embeddings, lineage)
        decision = replace(decision, mlflow_run_id=run.info.run_id)
        _log_decision(client, decision)
        if stage_result.comparison is not None:
            _log_evaluation_plot(stage_result, decision.comparison)
    apply_decision(settings, client, decision)
    log.info("registry: %s → %s (%s)", challenger.version, decision.outcome, decision.reason)
    return decision


def write_champion_recommendations(
    settings: Settings, run_date: date, tonight: RecommenderStageResult | None = None
) -> dict[str, int]:
    """Replace ``marts.recommendations`` and ``marts.similar_products`` with ``@champion``'s output for the night.

    Recommendations: top 20 for the night's active users that the champion was fitted on. After an audited
    night the champion is fitted on the night's data (promoted, or the kept configuration refitted); after a
    failed audit it is the last audited night's, and users new since then get none. ``tonight``: the recommender
    stage's result when the caller holds it (the flow). When ``@champion`` is tonight's model (same
    ``model_version`` label: same configuration, code and data), the stage's own recommendations and similar
    products are written, which the registered model would reproduce; otherwise the champion is loaded from the
    registry and scores the night's active users (the stage's event log when given, else the warehouse's).
    Returns row counts per table.
    """
    client = mlflow_client(settings)
    champion = champion_version(client)
    if champion is None:
        raise LookupError(f"{RECOMMENDER_MODEL_NAME} has no @{CHAMPION}: run a night or `shopflow models promote`")
    label = champion.tags.get(MODEL_VERSION_TAG, f"{RECOMMENDER_MODEL_NAME}-v{champion.version}")
    if tonight is not None and tonight.model_version == label:
        recommendations, similar = tonight.recommendations, tonight.similar_products
    else:
        recommendations, similar = _champion_outputs(settings, run_date, champion, label, tonight)
    with connect(settings) as con:
        counts = write_recommendation_tables(con, recommendations, similar)
    log.info("published mart source: %s v%s (%s): %s", RECOMMENDER_MODEL_NAME, champion.version, label, counts)
    return counts


def _champion_outputs(
    settings: Settings, run_date: date, champion: ModelVersion, label: str, tonight: RecommenderStageResult | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The registered champion's recommendations for the night's active users, and its similar products."""
    import mlflow

    loaded = mlflow.pyfunc.load_model(f"models:/{RECOMMENDER_MODEL_NAME}/{champion.version}")
    model = loaded.unwrap_python_model()
    events = tonight.events if tonight is not None else read_inputs(settings, run_date)[0]
    users = active_users(events.window(None, run_date + timedelta(days=1)))
    predicted = loaded.predict(pd.DataFrame({"user_id": users}), params={"k": RECOMMENDATIONS_PER_USER})
    recommendations = predicted.assign(
        model_name=model.recommender.name, model_version=label, run_date=pd.Timestamp(run_date)
    )[list(RECOMMENDATION_COLUMNS)]
    return recommendations, similar_products_frame(model.recommender, label, run_date, model.text_fallback)


def log_content_model(settings: Settings, run_date: date, stage_name: str, identity: dict) -> str:
    """Record a content stage's model identity (package, version, weights sha256, prompt/threshold version).

    Tags ``<stage_name>.<key>`` (nested dicts as ``<stage_name>.<key>.<subkey>``) on the night's MLflow run in
    ``shopflow-nightly`` (the recommender's, whichever of the two logs first) and the whole dict as the artifact
    ``<stage_name>/model_identity.json``. Returns the run id.
    """
    import mlflow

    if not identity:
        raise ValueError(f"{stage_name}: empty model identity")
    client = mlflow_client(settings)
    experiment_id = nightly_experiment_id(settings)
    night_run = _night_run(client, experiment_id, run_date)
    if night_run is None:
        night_run = client.create_run(experiment_id, run_name=f"nightly-{run_date.isoformat()}")
    with mlflow.start_run(run_id=night_run.info.run_id, tags={"lineage.run_date": run_date.isoformat()}) as active:
        mlflow.set_tags(_flat_tags(identity, prefix=stage_name))
        mlflow.log_dict(identity, f"{stage_name}/model_identity.json")
        return active.info.run_id


def note_alias_changed_outside(settings: Settings, client: MlflowClient, run_date: date) -> PromotionDecision | None:
    """Record a ``champion`` alias moved outside shopflow (the MLflow UI) since the last recorded decision.

    The alias is honoured as set; the moved-to version remembers the recorded champion, so rollback works.
    """
    champion = champion_version(client)
    decisions = read_decisions(settings) if settings.warehouse_path.exists() else pd.DataFrame()
    recorded = decisions["champion_after"].dropna().iloc[-1] if len(decisions) else None
    current = str(champion.version) if champion else None
    if recorded is None or current == recorded:
        return None
    decision = PromotionDecision(
        run_date, "alias_changed_outside", "honoured", None, recorded, current,
        reason=f"@{CHAMPION} was moved from v{recorded} to v{current} outside shopflow (e.g. the MLflow UI)",
    )  # fmt: skip
    apply_decision(settings, client, decision)  # re-points the alias where it is, and remembers v{recorded}
    return decision


# ---------- the gate, with the night's facts
def _gate(
    settings: Settings,
    client: MlflowClient,
    run_date: date,
    challenger: ModelVersion,
    stage_result: RecommenderStageResult,
    lineage: NightLineage,
) -> PromotionDecision:
    """Tonight's gate outcome (:mod:`.gate`); the champion is refitted and re-evaluated only when it has to be."""
    champion = champion_version(client)
    margin = settings.promotion_margin_ndcg
    decided = dict(
        run_date=run_date,
        action="nightly_gate",
        challenger_version=str(challenger.version),
        champion_before=str(champion.version) if champion else None,
        audit_passed=lineage.validation_passed,
        margin=margin,
    )

    def keep(outcome: str, reason: str, comparison: PairedComparison | None = None) -> PromotionDecision:
        return PromotionDecision(**decided, outcome=outcome, champion_after=decided["champion_before"], reason=reason,
                                 comparison=comparison)  # fmt: skip

    def promote(outcome: str, reason: str, comparison: PairedComparison | None = None) -> PromotionDecision:
        return PromotionDecision(**decided, outcome=outcome, champion_after=str(challenger.version), reason=reason,
                                 comparison=comparison)  # fmt: skip

    if champion is not None and champion.version == challenger.version:
        return keep(gate.ALREADY_CHAMPION, f"v{challenger.version} is already {CHAMPION}")
    if (
        champion is not None
        and champion.tags.get("champion.run_date") == run_date.isoformat()
        and (champion.tags.get("champion.action") == "nightly_gate")
    ):
        return keep(gate.NIGHT_ALREADY_DECIDED, f"v{champion.version} was promoted for {run_date} already")
    if not lineage.validation_passed:
        return keep(gate.AUDIT_FAILED, f"the audit of {run_date} failed: {lineage.validation_summary or 'no details'}")
    if champion is None:
        return promote(gate.FIRST_CHAMPION, "no champion yet: the first night's model becomes champion")
    challenger_config = RecommenderConfig.from_tags(challenger.tags)
    try:
        champion_config = RecommenderConfig.from_tags(champion.tags)
    except (KeyError, TypeError, ValueError) as error:
        return promote(gate.CHAMPION_NOT_COMPARABLE, f"v{champion.version} has no usable configuration tags: {error}")
    if champion_config == challenger_config:
        return promote(gate.REFRESHED, f"same family and parameters as v{champion.version}, fitted on newer data")
    if stage_result.comparison is None:
        raise ValueError(
            f"the night refitted {challenger_config.family} without a comparison, but the champion v{champion.version}"
            f" is {champion_config.family} with other parameters: the stage must refit the champion's configuration"
        )
    train, holdout = stage_result.comparison.train, stage_result.comparison.holdout_targets
    try:
        champion_ndcg = gate.reevaluate_config(champion_config, train, holdout, stage_result.item_embeddings)
    except (KeyError, TypeError, ValueError) as error:
        return promote(gate.CHAMPION_NOT_COMPARABLE, f"v{champion.version} cannot be rebuilt by this code: {error}")
    challenger_ndcg = stage_result.comparison.candidates[stage_result.model_name].holdout_per_user.ndcg
    comparison = gate.paired_ndcg_comparison(challenger_ndcg, champion_ndcg)
    numbers = (
        f"NDCG@{K} {comparison.challenger_ndcg:.4f} vs {comparison.champion_ndcg:.4f}, gain {comparison.delta:+.4f} "
        f"(95% CI {comparison.delta_ci95[0]:+.4f}..{comparison.delta_ci95[1]:+.4f}, {comparison.evaluated_users} "
        f"users), margin {margin}"
    )
    if gate.is_better(comparison, margin):
        return promote(gate.PROMOTED, f"better than v{champion.version}: {numbers}", comparison)
    return keep(gate.KEPT, f"not better than v{champion.version} by the margin with a CI above zero: {numbers}",
                comparison)  # fmt: skip


# ---------- MLflow logging
def _log_stage(stage_result: RecommenderStageResult) -> None:
    """Parameters, every candidate's metrics and metrics.json of the stage, in the active run."""
    import mlflow

    metrics = stage_result.metrics
    selected = metrics["selected"]
    params = {
        "selected.family": selected["name"],
        "selected.model_version": selected["version"],
        "selection.mode": metrics["selection"]["mode"],
        "candidates": ",".join(metrics.get("candidates", {})),
        "k": K,
        "bootstrap_resamples": BOOTSTRAP_RESAMPLES,
        **{f"split.{key}": value for key, value in metrics.get("split", {}).items()},
        **{f"selected.{key}": value for key, value in selected["params"].items()},
    }
    mlflow.log_params(params)
    values = {"data.users": metrics["data"]["users"], "data.products": metrics["data"]["products"],
              "data.interactions": metrics["data"]["interactions"]}  # fmt: skip
    for name, candidate in metrics.get("candidates", {}).items():
        values[f"{name}.validation_ndcg_at_{K}"] = candidate["validation_ndcg@10"]
        for metric, summary in candidate["holdout"].items():
            if summary["value"] is None:
                continue
            key = f"{name}.holdout.{_metric_name(metric)}"
            values[key] = summary["value"]
            values[f"{key}.ci_low"], values[f"{key}.ci_high"] = summary["ci95"]
    mlflow.log_metrics(values)
    mlflow.log_artifact(str(stage_result.metrics_path))


def _refit_kept_champion(
    client: MlflowClient,
    kept: PromotionDecision,
    everything: InteractionMatrix,
    stage_result: RecommenderStageResult,
    embeddings: np.ndarray,
    lineage: NightLineage,
) -> PromotionDecision:
    """Fit the kept champion's configuration on ``everything``, register it (once) and make it the champion.

    Its holdout score is the champion's re-evaluation in ``kept.comparison``, not the challenger's.
    """
    champion = client.get_model_version(RECOMMENDER_MODEL_NAME, kept.champion_before)
    config = RecommenderConfig.from_tags(champion.tags)
    model = create_recommender(config.family, **config.params).fit(everything, embeddings)
    label = model_version(model, kept.run_date)
    refit = _registered_version(client, label)
    if refit is None:
        scores = {f"holdout.ndcg_at_{K}": kept.comparison.champion_ndcg}
        fallback = _text_fallback(stage_result, model, embeddings)
        refit = _log_and_register(client, model, fallback, lineage, label, scores, refit_of=str(champion.version))
    reason = f"{kept.reason}; v{champion.version} refitted on data up to {kept.run_date} as v{refit.version}"
    return replace(kept, outcome=gate.KEPT_REFITTED, champion_after=str(refit.version), reason=reason)


def _log_and_register(
    client: MlflowClient,
    model: Recommender,
    text_fallback: Recommender | None,
    lineage: NightLineage,
    label: str,
    scores: dict[str, float | None],
    refit_of: str | None = None,
) -> ModelVersion:
    """Log ``model`` (with its text fallback) as a pyfunc in the active run, register it and tag the new version.

    Tags: lineage, configuration, the ``model_version`` ``label``, ``scores`` (tag name → value) and, for a
    refit of a champion's configuration, ``refit_of`` (that champion's version).
    """
    import mlflow
    from mlflow.models import infer_signature

    from shopflow.registry.pyfunc_model import (  # imports mlflow
        DEFAULT_K,
        RECOMMENDER_ARTIFACT,
        TEXT_FALLBACK_ARTIFACT,
        recommend_known_users,
    )

    example = pd.DataFrame({"user_id": model.fitted.user_ids[:INPUT_EXAMPLE_USERS].astype(str)})
    with tempfile.TemporaryDirectory(prefix="shopflow-model-") as folder, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(Integer columns|type hints|cloudpickle).*")
        artifacts = {RECOMMENDER_ARTIFACT: str(model.save(Path(folder) / RECOMMENDER_ARTIFACT))}
        if text_fallback is not None:
            artifacts[TEXT_FALLBACK_ARTIFACT] = str(text_fallback.save(Path(folder) / TEXT_FALLBACK_ARTIFACT))
        output = recommend_known_users(model, example["user_id"].to_numpy(), DEFAULT_K)
        info = mlflow.pyfunc.log_model(
            name="recommender",
            python_model=str(ENTRY_FILE),
            artifacts=artifacts,
            signature=infer_signature(example, output, params={"k": DEFAULT_K}),
            input_example=example,
            pip_requirements=[f"{name}=={installed_version(name)}" for name in PIP_REQUIREMENTS],
            registered_model_name=RECOMMENDER_MODEL_NAME,
        )
    version = str(info.registered_model_version)
    config = RecommenderConfig(model.name, asdict(model.params), model.version)
    tags = lineage.tags() | config.tags() | {MODEL_VERSION_TAG: label}
    tags |= {key: _number(value) for key, value in scores.items()}
    if refit_of is not None:
        tags[REFIT_OF_TAG] = refit_of
    for key, value in tags.items():
        client.set_model_version_tag(RECOMMENDER_MODEL_NAME, version, key, value)
    return client.get_model_version(RECOMMENDER_MODEL_NAME, version)


def _log_decision(client: MlflowClient, decision: PromotionDecision) -> None:
    """The gate's outcome and numbers as run metrics/tags and as tags of the challenger (and the refit) version.

    A version already decided for this night (a re-run) keeps its tags.
    """
    import mlflow

    tags = {
        "gate.run_date": decision.run_date.isoformat(),
        "gate.outcome": decision.outcome,
        "gate.reason": decision.reason,
        "gate.champion_before": decision.champion_before or "none",
        "gate.champion_after": decision.champion_after or "none",
        "gate.margin": str(decision.margin),
    }
    if decision.comparison is not None:
        comparison = decision.comparison
        numbers = {
            "gate.challenger_ndcg_at_10": comparison.challenger_ndcg,
            "gate.champion_ndcg_at_10": comparison.champion_ndcg,
            "gate.ndcg_delta": comparison.delta,
            "gate.ndcg_delta_ci_low": comparison.delta_ci95[0],
            "gate.ndcg_delta_ci_high": comparison.delta_ci95[1],
        }
        mlflow.log_metrics(numbers)
        tags |= {key: _number(value) for key, value in numbers.items()}
    mlflow.set_tags(tags | {"registered_version": decision.challenger_version})
    versions = [decision.challenger_version]
    if decision.outcome == gate.KEPT_REFITTED:
        versions.append(decision.champion_after)
    for version in versions:
        if client.get_model_version(RECOMMENDER_MODEL_NAME, version).tags.get("gate.run_date") == tags["gate.run_date"]:
            continue  # a re-run of the night: the version keeps the decision first made for it
        for key, value in tags.items():
            client.set_model_version_tag(RECOMMENDER_MODEL_NAME, version, key, value)


def _log_evaluation_plot(stage_result: RecommenderStageResult, comparison: PairedComparison | None) -> None:
    """Holdout NDCG@10 with 95 % intervals per candidate (selected in black; the re-evaluated champion in grey)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mlflow

    candidates = stage_result.metrics["candidates"]
    names = list(candidates)
    values = [candidates[name]["holdout"][f"ndcg@{K}"]["value"] or 0.0 for name in names]
    intervals = [candidates[name]["holdout"][f"ndcg@{K}"]["ci95"] or [0.0, 0.0] for name in names]
    colours = ["black" if name == stage_result.model_name else "tab:blue" for name in names]
    if comparison is not None:
        names.append("champion (refit)")
        values.append(comparison.champion_ndcg)
        intervals.append([comparison.champion_ndcg, comparison.champion_ndcg])
        colours.append("grey")
    errors = np.array([[value - low, high - value] for value, (low, high) in zip(values, intervals, strict=True)]).T
    figure, axes = plt.subplots(figsize=(1.2 * len(names) + 2, 4))
    axes.bar(names, values, yerr=np.clip(errors, 0, None), color=colours, capsize=4)
    axes.set_ylabel(f"holdout NDCG@{K} (95% CI)")
    axes.set_title(f"Recommender candidates, night {stage_result.run_date}")
    axes.tick_params(axis="x", rotation=30)
    figure.tight_layout()
    mlflow.log_figure(figure, "evaluation/holdout_ndcg.png")
    plt.close(figure)


# ---------- helpers
def _registered_version(client: MlflowClient, model_version_label: str) -> ModelVersion | None:
    """The registered version already holding this exact model (a re-run of the night), if any."""
    versions = recommender_versions(client)
    matches = [v for v in versions if v.tags.get(MODEL_VERSION_TAG) == model_version_label]
    return min(matches, key=lambda v: int(v.version)) if matches else None


def _night_run(client: MlflowClient, experiment_id: str, run_date: date) -> Run | None:
    """The latest run of the night ``run_date`` in the nightly experiment, if one exists."""
    runs = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`lineage.run_date` = '{run_date.isoformat()}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return runs[0] if runs else None


def _flat_tags(values: dict, prefix: str) -> dict[str, str]:
    """``{"a": {"b": 1}}`` → ``{"<prefix>.a.b": "1"}``."""
    tags = {}
    for key, value in values.items():
        if isinstance(value, dict):
            tags |= _flat_tags(value, f"{prefix}.{key}")
        else:
            tags[f"{prefix}.{key}"] = str(value)
    return tags


def _text_fallback(
    stage_result: RecommenderStageResult, model: Recommender, embeddings: np.ndarray
) -> Recommender | None:
    """The text model that gives ``model``'s never-sold products their similar products (None for text models).

    Fitted on ``model``'s data with the parameters the recommender stage used for it.
    """
    if model.uses_text:
        return None
    return create_recommender(TEXT_FALLBACK, **stage_result.text_params).fit(model.fitted, embeddings)


def _selected_scores(stage_result: RecommenderStageResult) -> dict[str, float | None]:
    """The selected model's holdout NDCG@10 and recall@10 and its validation NDCG@10, by version tag name.

    Empty on a refit night: nothing was evaluated.
    """
    if stage_result.comparison is None:
        return {}
    holdout = stage_result.metrics["candidates"][stage_result.model_name]["holdout"]
    return {
        f"holdout.ndcg_at_{K}": holdout[f"ndcg@{K}"]["value"],
        f"holdout.recall_at_{K}": holdout[f"recall@{K}"]["value"],
        f"validation.ndcg_at_{K}": stage_result.metrics["selected"]["validation_ndcg@10"],
    }


def _metric_name(metric: str) -> str:
    """MLflow metric names allow no ``@``: ``ndcg@10`` → ``ndcg_at_10``."""
    return metric.replace("@", "_at_")


def _number(value: float | None) -> str:
    return "none" if value is None else f"{value:.6f}"
