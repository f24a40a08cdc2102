"""The nightly DAG, write-audit-publish.

ingest → dbt build → audit → embed → recommend → register → describe → moderate → publish → report.

Each task calls one plain function (``shopflow.ingest``, ``shopflow.transform``, ``shopflow.expectations.audit``,
``shopflow.models.*``, ``shopflow.registry.nightly``, ``shopflow.publish``) so the logic is tested without
Prefect. An audit error fails the night before any model is trained or anything is published: analysts keep the
previous snapshot. Tasks are coarse (one ``dbt build`` per night) because orchestration overhead dominates small
runs. Run it with ``shopflow nightly`` (ephemeral Prefect) or on a schedule.
"""

import json
from datetime import date
from functools import partial

import numpy as np
import pandas as pd
from prefect import Task, flow, get_run_logger, task, unmapped
from prefect.cache_policies import NO_CACHE

from shopflow.contract import latest_landing_day
from shopflow.expectations.audit import audit_night
from shopflow.ingest import ingest_landing
from shopflow.models.descriptions.stage import generate_shard, run_description_stage
from shopflow.models.embeddings import MiniLMEncoder
from shopflow.models.moderation.stage import run_moderation_stage, score_shard
from shopflow.models.pipeline import RecommenderStageResult, embed_catalogue, run_recommender_stage
from shopflow.models.split import InsufficientHistoryError
from shopflow.nights import finished_night, night_fingerprint
from shopflow.publish import publish_snapshot
from shopflow.registry.champion import champion_config
from shopflow.registry.lineage import NightLineage
from shopflow.registry.nightly import log_content_model, register_and_promote, write_champion_recommendations
from shopflow.registry.retention import prune_model_versions
from shopflow.registry.tracking import open_tracking_store
from shopflow.report import render_report
from shopflow.runners import build_task_runner, check_task_runner, shard_count
from shopflow.settings import Settings, configure_runtime
from shopflow.stages import StageRecord, stage
from shopflow.transform import build_warehouse
from shopflow.warehouse import row_accounting
from shopflow.warmup import imports_in_background

configure_runtime()  # also here: a served run's process loads this file by path, not through the package's __init__


def run_shard_tasks(settings: Settings, shard_task: Task, part: str, parts: list[list], **shared) -> list:
    """One ``shard_task`` run per part (passed as its argument ``part``, ``shared`` as the others): mapped over the
    Dask workers with the dask runner; with the local runner (one part) called in the flow's own thread, not in a
    worker thread of Prefect's pool, where torch's larger tensors would be fresh kernel pages at every step
    (:mod:`shopflow.allocator`)."""
    if settings.task_runner == "local":
        return [shard_task(settings, **{part: items}, **shared) for items in parts]
    futures = shard_task.map(
        unmapped(settings), **{part: parts}, **{name: unmapped(value) for name, value in shared.items()}
    )
    return [future.result() for future in futures]


@task(name="ingest", cache_policy=NO_CACHE)
def ingest_task(settings: Settings, run_date: date) -> dict:
    """Load landing files delivered up to the run date into raw; fail on any refused file."""
    with stage("ingest") as record:
        report = ingest_landing(settings, until=run_date)
        record.rows_out = report.rows_loaded
        report.raise_for_refusals()
    return report.to_dict() | {"stage": record.to_dict()}


@task(name="dbt-build", cache_policy=NO_CACHE)
def dbt_build_task(settings: Settings, run_date: date) -> dict:
    """Build and test every dbt model for the run date; fail on any failing model or test."""
    with stage("dbt-build") as record:
        built = build_warehouse(settings, run_date)
        accounting = row_accounting(settings)
        record.rows_in = sum(entity["raw_rows"] for entity in accounting)
        record.rows_out = sum(entity["clean_rows"] for entity in accounting)
    return built.to_dict() | {"row_accounting": accounting, "stage": record.to_dict()}


@task(name="audit", cache_policy=NO_CACHE)
def audit_task(settings: Settings, run_date: date) -> dict:
    """Validate the built night with the Great Expectations suites; fail on any error-level expectation."""
    with stage("audit") as record:
        report = audit_night(settings, run_date)
        record.rows_out = len(report.results)
    report.raise_for_errors()
    return report.summary() | {"stage": record.to_dict()}


@task(name="embed-shard", cache_policy=NO_CACHE)
def embed_shard_task(settings: Settings, texts: list[str]) -> np.ndarray:
    """Encode one shard of product texts with MiniLM (on a Dask worker when the task runner is dask)."""
    return MiniLMEncoder.from_settings(settings).encode(texts)


def embed_products(settings: Settings) -> dict:
    """Fill the embedding cache for new or changed product texts, one ``embed-shard`` task per shard."""
    with stage("embed") as record:

        def encode_shards(parts: list[list[str]]) -> list[np.ndarray]:
            return run_shard_tasks(settings, embed_shard_task, "texts", parts)

        counts = embed_catalogue(settings, shard_count(settings), encode_shards)
        record.rows_in, record.rows_out = counts["products"], counts["encoded"]
    return counts | {"stage": record.to_dict()}


@task(name="recommend", cache_policy=NO_CACHE)
def recommend_task(settings: Settings, run_date: date) -> tuple[RecommenderStageResult | None, dict]:
    """Compare the recommender candidates (or, between comparisons, refit the champion's configuration) and fit the
    night's model on all data (None: too young a shop)."""
    with stage("recommend") as record:
        try:
            result = run_recommender_stage(settings, run_date, champion=champion_config(settings))
        except InsufficientHistoryError as too_young:
            get_run_logger().warning("recommender skipped: %s", too_young)
            return None, {"skipped": str(too_young), "stage": record.to_dict()}
        record.rows_in = result.metrics["data"]["interactions"]
    metrics = result.metrics
    summary = {"selection": metrics["selection"], "selected": metrics["selected"], "outputs": metrics["outputs"]}
    return result, summary | {"stage": record.to_dict()}


@task(name="register", cache_policy=NO_CACHE)
def register_task(
    settings: Settings, run_date: date, result: RecommenderStageResult, dbt_invocation_id: str | None, audit: dict
) -> dict:
    """Log the night in MLflow, register the selected model as challenger, run the promotion gate, write the
    champion's recommendations (the published marts always come from ``@champion``) and prune old versions."""
    with stage("register") as record:
        lineage = NightLineage.from_audit(settings, run_date, dbt_invocation_id, audit)
        decision = register_and_promote(settings, run_date, result, lineage)
        written = write_champion_recommendations(settings, run_date, result)
        pruned = prune_model_versions(settings)
        record.rows_out = sum(written.values())
    return {"decision": decision.to_dict(), "written": written, "pruned": pruned.to_dict(), "stage": record.to_dict()}


@task(name="describe-shard", cache_policy=NO_CACHE)
def describe_shard_task(settings: Settings, facts: list, run_date: date) -> tuple:
    """Generate and guard one shard of the night's descriptions (on a Dask worker when the task runner is dask)."""
    return generate_shard(settings, facts, run_date)


def describe_products(settings: Settings, run_date: date) -> dict:
    """Describe new or changed products within the night's budget, every fact guarded; shards as tasks."""
    with stage("describe") as record:

        def generate_shards(parts: list[list]) -> list[tuple]:
            return run_shard_tasks(settings, describe_shard_task, "facts", parts, run_date=run_date)

        result = run_description_stage(
            settings, run_date, generate_shards=generate_shards, shard_count=shard_count(settings)
        )
        record.rows_in, record.rows_out = result.products, len(result.descriptions)
    return content_summary(settings, run_date, "descriptions", result.summary(), record)


@task(name="moderate-shard", cache_policy=NO_CACHE)
def moderate_shard_task(settings: Settings, texts: list[str], judge_budget: int) -> pd.DataFrame:
    """Score one shard of the night's texts with the moderation ensemble (on a Dask worker when dask)."""
    return score_shard(settings, texts, judge_budget)


def moderate_texts(settings: Settings, run_date: date) -> dict:
    """Score new or changed reviews and descriptions (everything when the moderation version changed)."""
    with stage("moderate") as record:

        def score_shards(parts: list[list[str]], judge_budget: int) -> list[pd.DataFrame]:
            return run_shard_tasks(settings, moderate_shard_task, "texts", parts, judge_budget=judge_budget)

        result = run_moderation_stage(settings, run_date, score_shards=score_shards, shard_count=shard_count(settings))
        record.rows_in, record.rows_out = result.texts, len(result.scores)
    return content_summary(settings, run_date, "moderation", result.summary(), record)


def content_summary(settings: Settings, run_date: date, stage_name: str, summary: dict, record: StageRecord) -> dict:
    """The stage's summary for the night; when it produced anything, its model identity goes to the registry."""
    if record.rows_out:
        log_content_model(settings, run_date, stage_name, summary["model_identity"])
    return summary | {"stage": record.to_dict()}


@task(name="publish", cache_policy=NO_CACHE)
def publish_task(settings: Settings, run_date: date, dbt_invocation_id: str | None) -> dict:
    """Swap in the analysts' snapshot of the marts."""
    with stage("publish") as record:
        published = publish_snapshot(settings, run_date, dbt_invocation_id)
        record.rows_out = sum(int(table["rows"]) for table in published.tables.values())
    return published.to_dict() | {"stage": record.to_dict()}


@task(name="report", cache_policy=NO_CACHE)
def report_task(settings: Settings, run_date: date) -> str:
    """Render the night's HTML report from what the stages left behind."""
    return str(render_report(settings, run_date))


@flow(name="nightly", log_prints=True, task_runner=build_task_runner(Settings()))
def nightly(run_date: date | None = None) -> dict:
    """One night of the shop (module doc); ``run_date`` defaults to the latest landing day.

    A re-run of a published night with the same deliveries, code and settings stops after ingest (``shopflow.nights``).
    """
    settings = Settings()
    settings.ensure_dirs()
    check_task_runner(settings)
    run_date = run_date or latest_landing_day(settings.landing_dir)
    logger = get_run_logger()
    logger.info("nightly run for %s (data root %s)", run_date, settings.home)

    ingested = ingest_task(settings, run_date)
    fingerprint = night_fingerprint(settings, run_date)
    if (finished := finished_night(settings, run_date, fingerprint)) is not None:
        logger.info("night %s is published already and nothing it depends on changed: nothing to do", run_date)
        return finished | {"unchanged": True, "report": str(settings.reports_dir / run_date.isoformat() / "index.html")}
    # the later stages' libraries load, and the MLflow store opens, on the core dbt leaves idle
    with imports_in_background(preparations=[partial(open_tracking_store, settings)]):
        built = dbt_build_task(settings, run_date)
    audited = audit_task(settings, run_date)
    embedded = embed_products(settings)
    model, recommended = recommend_task(settings, run_date)
    registered = register_task(settings, run_date, model, built["invocation_id"], audited) if model else {}
    del model  # the stage's event log, matrices and frames (GBs at 50M events) are not needed past registering
    described = describe_products(settings, run_date)
    moderated = moderate_texts(settings, run_date)  # after describe: it scores the new descriptions too
    published = publish_task(settings, run_date, built["invocation_id"])

    steps = (ingested, built, audited, embedded, recommended, registered, described, moderated, published)
    stages = [step.pop("stage") for step in steps if step]
    accounting = built.pop("row_accounting")
    summary = {
        "run_date": run_date.isoformat(),
        "fingerprint": fingerprint,
        "ingest": ingested,
        "dbt": built,
        "row_accounting": accounting,
        "audit": audited,
        "embeddings": embedded,
        "recommender": recommended,
        "registry": registered,
        "descriptions": described,
        "moderation": moderated,
        "published": published,
        "stages": stages,
    }
    report_dir = settings.reports_dir / run_date.isoformat()
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "nightly.json").write_text(json.dumps(summary, indent=2, default=str))
    summary["report"] = report_task(settings, run_date)
    return summary


if __name__ == "__main__":
    nightly()
