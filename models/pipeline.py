"""The nightly recommender stage, as one function for the flow: marts → candidates compared → selected model → tables.

:func:`run_recommender_stage` (after ``dbt build``, before publish):

1. reads the event-level marts and the catalogue from the warehouse, read-only, up to the run date;
2. embeds every product's text (MiniLM; only new or changed texts are encoded, see :mod:`.embeddings`);
3. decides whether tonight compares every candidate or refits the champion's configuration (:mod:`.selection`:
   a comparison weekly, on fast growth, or when there is no usable champion);
4. comparing: plans the temporal split (:mod:`.split`); for every candidate tunes it on validation
   (:mod:`.tuning`), refits it on train with the chosen parameters and evaluates it on the holdout
   (:mod:`.evaluation`, which documents the protocol); selects the best *validation* NDCG@10 (the holdout only
   reports);
5. fits the selected (or the champion's) configuration on all events up to the run date (a refit night's ALS
   starts from the previous night's factors, :mod:`.recommenders.warm_start`, and keeps tonight's) and computes
   ``recommendations`` (top 20 per active user, seen items excluded) and ``similar_products`` (top 20 per
   product, cold products included);
6. writes ``<reports_dir>/<run_date>/metrics.json`` and returns the fitted model, both frames and the metrics.

:func:`write_recommendation_tables` then replaces ``marts.recommendations`` and ``marts.similar_products`` in a
DuckDB connection the caller opens read-write.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from shopflow.models.catalogue import product_texts, read_catalogue
from shopflow.models.embeddings import EmbeddingCache, MiniLMEncoder, TextEncoder, embed_texts
from shopflow.models.evaluation import BOOTSTRAP_RESAMPLES, EvaluationTargets, K, UserMetrics, evaluate
from shopflow.models.interactions import EventLog, InteractionMatrix, InteractionWeights, read_daily_events
from shopflow.models.recommenders import Recommender, create_recommender
from shopflow.models.recommenders.warm_start import FactorStore, WarmStart
from shopflow.models.selection import COMPARE, RecommenderConfig, SelectionPlan, plan_selection
from shopflow.models.split import DEFAULT_HOLDOUT_DAYS, DEFAULT_VALIDATION_DAYS, TemporalSplit
from shopflow.models.tuning import TuningResult, tune_recommender, tuning_order
from shopflow.runners import shards
from shopflow.settings import Settings
from shopflow.warehouse import connect, register_frame

log = logging.getLogger(__name__)

DEFAULT_CANDIDATES = ("popularity", "item_knn", "ease", "als", "bpr", "content", "als_text", "hybrid")
RECOMMENDATIONS_PER_USER = 20
SIMILAR_PER_PRODUCT = 20
ACTIVE_DAYS = 90  # users with an interaction in the last ACTIVE_DAYS days up to the run date get recommendations
TEXT_FALLBACK = "content"  # similar products for cold items when the selected model has no text

RECOMMENDATION_COLUMNS = {
    "user_id": "varchar",
    "rank": "integer",
    "product_id": "varchar",
    "score": "double",
    "model_name": "varchar",
    "model_version": "varchar",
    "run_date": "date",
}
SIMILAR_PRODUCT_COLUMNS = {
    "product_id": "varchar",
    "rank": "integer",
    "similar_product_id": "varchar",
    "score": "double",
    "model_name": "varchar",
    "model_version": "varchar",
    "run_date": "date",
}


@dataclass(frozen=True)
class CandidateResult:
    """One candidate of the comparison: its tuning on validation and its holdout metrics (with CIs)."""

    name: str
    tuning: TuningResult
    holdout: dict[str, dict]
    fit_seconds: float
    evaluate_seconds: float
    holdout_per_user: UserMetrics = field(repr=False, compare=False)  # for paired comparisons between candidates

    def to_dict(self) -> dict:
        return {
            "params": self.tuning.params,
            "validation_ndcg@10": self.tuning.validation_ndcg,
            "holdout": self.holdout,
            "seconds": {
                "tune": self.tuning.seconds,
                "fit": self.fit_seconds,
                "evaluate": self.evaluate_seconds,
            },
            "trials": self.tuning.trials,
        }


@dataclass(frozen=True)
class Comparison:
    """All candidates tuned, refitted on train and evaluated on the same holdout."""

    split: TemporalSplit
    candidates: dict[str, CandidateResult]
    validation: dict  # summary of the validation targets
    seconds: float  # wall clock
    cpu_seconds: float  # CPU time of this process (all threads): the work, whatever else shares the cores
    train: InteractionMatrix = field(repr=False)  # the holdout's training window (the gate refits the champion on it)
    holdout_targets: EvaluationTargets = field(repr=False)  # the users every candidate was scored on

    def selected(self) -> CandidateResult:
        """The candidate with the best validation NDCG@10 (first listed wins a tie)."""
        return max(self.candidates.values(), key=lambda result: result.tuning.validation_ndcg)

    def to_dict(self) -> dict:
        return {
            "split": self.split.to_dict(),
            "validation_targets": self.validation,
            "holdout_targets": self.holdout_targets.summary(),
            "candidates": {name: result.to_dict() for name, result in self.candidates.items()},
            "seconds": self.seconds,
            "cpu_seconds": self.cpu_seconds,
        }


@dataclass(frozen=True)
class RecommenderStageResult:
    """What one night's recommender stage produced."""

    run_date: date
    model: Recommender  # the selected (or refitted champion's) family, fitted on every event up to the run date
    model_name: str
    model_version: str
    recommendations: pd.DataFrame  # RECOMMENDATION_COLUMNS
    similar_products: pd.DataFrame  # SIMILAR_PRODUCT_COLUMNS
    metrics: dict  # the content of metrics.json
    metrics_path: Path
    selection: SelectionPlan  # compare every candidate, or refit the champion's configuration
    comparison: Comparison | None = field(repr=False, compare=False)  # None on a refit night
    events: EventLog = field(repr=False, compare=False)  # the daily event log the stage read
    item_embeddings: np.ndarray = field(repr=False, compare=False)  # text vectors, rows = the catalogue's products
    text_params: dict = field(default_factory=dict)  # TEXT_FALLBACK's parameters (similar products of cold items)


def read_inputs(settings: Settings, run_date: date) -> tuple[EventLog, pd.DataFrame]:
    """The daily event log up to ``run_date`` and the catalogue, read from the warehouse marts (read-only)."""
    weights = InteractionWeights.from_dbt_project(settings.dbt_project_dir)
    with connect(settings, read_only=True) as con:
        daily = read_daily_events(con, run_date)
        catalogue = read_catalogue(con)
    return EventLog.from_daily_frame(daily, catalogue["product_id"].to_numpy(dtype=str), weights), catalogue


def embed_catalogue(
    settings: Settings,
    shard_count: int,
    encode_shards: Callable[[list[list[str]]], list[np.ndarray]],
    encoder: TextEncoder | None = None,
) -> dict[str, int]:
    """Fill the embedding cache for every catalogue text it lacks, in ``shard_count`` shards.

    ``encode_shards`` maps shards of texts to their vectors: in-process, or as tasks on a Dask cluster (the flow
    decides). The recommender stage then finds every text cached. Returns counts for the night's log.
    """
    model_id = (encoder or MiniLMEncoder.from_settings(settings)).model_id
    with connect(settings, read_only=True) as con:
        texts = list(product_texts(read_catalogue(con)))
    cache = EmbeddingCache(settings.cache_dir, model_id)
    known = cache.read()
    pending = cache.missing(texts, known)
    parts = shards(pending, shard_count)
    if parts:
        cache.add([text for part in parts for text in part], np.concatenate(encode_shards(parts)), known)
    return {"products": len(texts), "encoded": len(pending), "shards": len(parts)}


def compare_candidates(
    events: EventLog,
    item_embeddings: np.ndarray,
    split: TemporalSplit,
    candidates: tuple[str, ...] = DEFAULT_CANDIDATES,
) -> Comparison:
    """Tune every candidate on validation, refit it on train, evaluate it on the holdout (same targets for all)."""
    started, cpu_started = time.perf_counter(), time.process_time()
    fit_matrix = events.window(None, split.validation_start)
    validation = EvaluationTargets.from_windows(fit_matrix, events.window(split.validation_start, split.holdout_start))
    train = events.window(None, split.holdout_start)
    holdout = EvaluationTargets.from_windows(train, events.window(split.holdout_start, split.holdout_end))
    tuned: dict[str, dict] = {}
    fitted_on_fit_window: dict[str, Recommender] = {}  # reused by the hybrid instead of refitting its members
    fitted_on_train: dict[str, Recommender] = {}
    results: dict[str, CandidateResult] = {}
    for name in tuning_order(list(candidates)):
        tuning = tune_recommender(name, fit_matrix, validation, item_embeddings, tuned, fitted_on_fit_window)
        tuned[name] = tuning.params
        fitted_on_fit_window[name] = tuning.model
        fit_started = time.perf_counter()
        model = create_recommender(name, **tuning.params).fit(train, item_embeddings, fitted_on_train)
        fitted_on_train[name] = model
        evaluate_started = time.perf_counter()
        per_user = evaluate(model, holdout)
        holdout_metrics = per_user.summary()
        results[name] = CandidateResult(
            name,
            tuning,
            holdout_metrics,
            fit_seconds=round(evaluate_started - fit_started, 2),
            evaluate_seconds=round(time.perf_counter() - evaluate_started, 2),
            holdout_per_user=per_user,
        )
        log.info(
            "candidate %s: validation ndcg@10 %.4f, holdout ndcg@10 %.4f (tune %.1fs)",
            name,
            tuning.validation_ndcg,
            holdout_metrics[f"ndcg@{K}"]["value"] or 0.0,
            tuning.seconds,
        )
    ordered = {name: results[name] for name in candidates}
    return Comparison(
        split,
        ordered,
        validation.summary(),
        seconds=round(time.perf_counter() - started, 2),
        cpu_seconds=round(time.process_time() - cpu_started, 2),
        train=train,
        holdout_targets=holdout,
    )


def run_recommender_stage(
    settings: Settings,
    run_date: date,
    candidates: tuple[str, ...] | None = None,
    encoder: TextEncoder | None = None,
    holdout_days: int = DEFAULT_HOLDOUT_DAYS,
    validation_days: int = DEFAULT_VALIDATION_DAYS,
    champion: RecommenderConfig | None = None,
) -> RecommenderStageResult:
    """Compare the candidates and refit the best on all data, or refit ``champion`` (:mod:`.selection` decides);
    write metrics.json (module doc)."""
    started = time.perf_counter()
    candidates = tuple(candidates or DEFAULT_CANDIDATES)
    events, catalogue = read_inputs(settings, run_date)
    encoder = encoder or MiniLMEncoder.from_settings(settings)
    embed_started = time.perf_counter()
    embedded = embed_texts(list(product_texts(catalogue)), encoder, settings.cache_dir)
    embed_seconds = round(time.perf_counter() - embed_started, 2)
    everything = events.window(None, run_date + timedelta(days=1))
    plan = plan_selection(
        settings.reports_dir,
        run_date,
        int(everything.user_items.nnz),
        candidates,
        champion,
        settings.recommender_compare_every_days,
        settings.recommender_compare_growth,
    )
    log.info("recommender stage: %s (%s)", plan.mode, plan.reason)
    comparison = None
    if plan.mode == COMPARE:
        split = TemporalSplit.plan(events.first_day, events.last_day, holdout_days, validation_days)
        sampled = events.sample_users(settings.recommender_max_users)
        comparison = compare_candidates(sampled, embedded.vectors, split, candidates)
        best = comparison.selected()
        family, params, validation_ndcg = best.name, best.tuning.params, best.tuning.validation_ndcg
        fallback = comparison.candidates.get(TEXT_FALLBACK)
        text_params = fallback.tuning.params if fallback else {}
    else:
        family, params, validation_ndcg = plan.refit.family, plan.refit.params, None
        text_params = plan.text_params(TEXT_FALLBACK)

    refit_started = time.perf_counter()
    factor_store = FactorStore(settings.recommender_factors_dir)
    warm_start = night_warm_start(factor_store, plan, run_date, settings)
    model = create_recommender(family, **params).fit(everything, embedded.vectors, warm_start=warm_start)
    factors = model.fitted_factors(run_date)
    if factors is not None:
        factor_store.keep(factors)
    version = model_version(model, run_date)
    recommendations = recommendations_frame(model, active_users(everything), run_date, version)
    text_model = None
    if not model.uses_text:
        text_model = create_recommender(TEXT_FALLBACK, **text_params).fit(everything, embedded.vectors)
    similar = similar_products_frame(model, version, run_date, text_model)
    refit_seconds = round(time.perf_counter() - refit_started, 2)

    metrics = {
        "stage": "recommender",
        "run_date": run_date.isoformat(),
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "data": {
            "first_day": events.first_day.isoformat(),
            "last_day": events.last_day.isoformat(),
            "users": int(everything.n_users),
            "products": int(everything.n_items),
            "interactions": int(everything.user_items.nnz),
            "interaction_weights": asdict(events.weights),
        },
        "protocol": {
            "k": K,
            "ranked": "every catalogue product except those the user interacted with before the window",
            "relevant": "products the user interacted with (positive weight) in the window and not before it",
            "evaluated_users": "users with interactions before the window and >= 1 relevant product in it",
            "comparison_users": (
                f"candidates are compared on at most {settings.recommender_max_users:,} users (a uniform sample of the"
                " shop's users with all their events); the night's model is fitted on every user"
            ),
            "cold_items": "products whose first interaction is inside the window; ranked among cold products only",
            "selection": "best validation ndcg@10; holdout metrics are reported, never used for choices",
            "confidence_intervals": (
                f"95% percentile bootstrap over evaluated users ({BOOTSTRAP_RESAMPLES} resamples, paired across"
                " candidates); coverage: delete-one-user jackknife"
            ),
        },
        "embeddings": {
            "model_id": encoder.model_id,
            "products": len(catalogue),
            "encoded": embedded.encoded,
            "cached": embedded.cached,
            "seconds": embed_seconds,
        },
        "selection": plan.to_dict(),
        **(comparison.to_dict() if comparison else {}),
        "selected": {
            "name": family,
            "version": version,
            "params": params,
            "validation_ndcg@10": validation_ndcg,
            "warm_start": (
                {"from": model.warm_started_from.isoformat(), "iterations": warm_start.iterations}
                if model.warm_started_from  # the model could use tonight's warm start
                else None
            ),
        },
        "outputs": {
            "active_days": ACTIVE_DAYS,
            "recommendations": len(recommendations),
            "users_with_recommendations": int(recommendations["user_id"].nunique()),
            "similar_products": len(similar),
            "products_with_similar": int(similar["product_id"].nunique()),
            "cold_products": int((everything.item_user_counts() == 0).sum()),
        },
        "seconds": {
            "embed": embed_seconds,
            "compare": comparison.seconds if comparison else 0.0,
            "compare_cpu": comparison.cpu_seconds if comparison else 0.0,
            "refit_and_outputs": refit_seconds,
            "total": round(time.perf_counter() - started, 2),
        },
    }
    report_dir = settings.reports_dir / run_date.isoformat()
    report_dir.mkdir(parents=True, exist_ok=True)
    metrics_path = report_dir / "metrics.json"
    metrics_path.write_text(json.dumps(metrics, indent=2, default=_json_default))
    log.info("recommender stage: %s %s (%s); metrics in %s", plan.mode, family, version, metrics_path)
    return RecommenderStageResult(
        run_date,
        model,
        family,
        version,
        recommendations,
        similar,
        metrics,
        metrics_path,
        plan,
        comparison,
        events,
        embedded.vectors,
        text_params,
    )


def night_warm_start(
    factor_store: FactorStore, plan: SelectionPlan, run_date: date, settings: Settings
) -> WarmStart | None:
    """A refit night starts from the newest earlier night's factors; a comparison night from random factors."""
    if plan.mode == COMPARE or settings.recommender_warm_start_iterations == 0:
        return None
    factors = factor_store.latest_before(run_date)
    return WarmStart(factors, settings.recommender_warm_start_iterations) if factors is not None else None


def active_users(matrix: InteractionMatrix, active_days: int = ACTIVE_DAYS) -> np.ndarray:
    """Ids of the users whose latest interaction is within the matrix window's last ``active_days`` days."""
    if matrix.days_since_last is None:
        return matrix.user_ids
    days = matrix.days_since_last
    fewest_days = np.minimum.reduceat(days.data, days.indptr[:-1])  # every user of a window has an interaction
    return matrix.user_ids[fewest_days <= active_days]


def model_version(model: Recommender, run_date: date) -> str:
    """``<name>-<run date>-<digest>``: the digest changes with the code version, parameters and fitted data."""
    matrix = model.fitted
    fingerprint = {
        "family_version": model.version,
        "params": asdict(model.params),
        "users": int(matrix.n_users),
        "items": int(matrix.n_items),
        "interactions": int(matrix.user_items.nnz),
        "weight_sum": round(float(matrix.user_items.sum()), 3),
    }
    if model.warm_started_from is not None:  # the same data and parameters, fitted from other starting factors
        fingerprint["warm_started_from"] = model.warm_started_from.isoformat()
    digest = hashlib.sha256(json.dumps(fingerprint, sort_keys=True, default=_json_default).encode()).hexdigest()
    return f"{model.name}-{run_date:%Y%m%d}-{digest[:8]}"


def recommendations_frame(model: Recommender, user_ids: np.ndarray, run_date: date, version: str) -> pd.DataFrame:
    """Top RECOMMENDATIONS_PER_USER unseen products per user, in RECOMMENDATION_COLUMNS."""
    frame = model.recommend(user_ids, k=RECOMMENDATIONS_PER_USER)
    return _stamp(frame, model.name, version, run_date, RECOMMENDATION_COLUMNS)


def similar_products_frame(
    model: Recommender, version: str, run_date: date, text_model: Recommender | None = None
) -> pd.DataFrame:
    """Top SIMILAR_PER_PRODUCT similar products for every catalogue product, in SIMILAR_PRODUCT_COLUMNS.

    When ``text_model`` is given (the selected model has no text), products without interactions, on which a
    collaborative model has no signal, take their rows from it instead.
    """
    frame = _stamp(model.similar_items(k=SIMILAR_PER_PRODUCT), model.name, version, run_date, SIMILAR_PRODUCT_COLUMNS)
    if text_model is None:
        return frame
    matrix = model.fitted
    cold = matrix.item_ids[matrix.item_user_counts() == 0]
    if not len(cold):
        return frame
    fallback = _stamp(
        text_model.similar_items(cold, k=SIMILAR_PER_PRODUCT),
        text_model.name,
        model_version(text_model, run_date),
        run_date,
        SIMILAR_PRODUCT_COLUMNS,
    )
    warm_rows = frame[~frame["product_id"].isin(cold)]
    return pd.concat([warm_rows, fallback], ignore_index=True).sort_values(["product_id", "rank"], ignore_index=True)


def write_recommendation_tables(
    con: duckdb.DuckDBPyConnection, recommendations: pd.DataFrame, similar_products: pd.DataFrame
) -> dict[str, int]:
    """Replace ``marts.recommendations`` and ``marts.similar_products`` with these frames (one transaction).

    ``con`` must be a read-write connection to the warehouse (the caller opens and closes it). Returns row counts.
    """
    tables = {
        "recommendations": (recommendations, RECOMMENDATION_COLUMNS),
        "similar_products": (similar_products, SIMILAR_PRODUCT_COLUMNS),
    }
    con.execute("begin transaction")
    try:
        con.execute("create schema if not exists marts")
        for table, (frame, columns) in tables.items():
            register_frame(con, "incoming_rows", frame)
            casts = ", ".join(f"cast({column} as {sql_type}) as {column}" for column, sql_type in columns.items())
            con.execute(f"create or replace table marts.{table} as select {casts} from incoming_rows")
            con.unregister("incoming_rows")
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    return {table: len(frame) for table, (frame, _) in tables.items()}


def _stamp(frame: pd.DataFrame, name: str, version: str, run_date: date, columns: dict[str, str]) -> pd.DataFrame:
    stamped = frame.assign(model_name=name, model_version=version, run_date=pd.Timestamp(run_date))
    return stamped[list(columns)]


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
