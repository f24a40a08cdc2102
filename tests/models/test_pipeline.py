"""The nightly stage end to end on a tiny synthetic warehouse (real MiniLM, every candidate)."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from shopflow.models.embeddings import embed_texts
from shopflow.models.interactions import InteractionMatrix
from shopflow.models.pipeline import (
    DEFAULT_CANDIDATES,
    RECOMMENDATION_COLUMNS,
    SIMILAR_PRODUCT_COLUMNS,
    RecommenderStageResult,
    active_users,
    embed_catalogue,
    night_warm_start,
    run_recommender_stage,
    similar_products_frame,
    write_recommendation_tables,
)
from shopflow.models.recommenders import create_recommender, load_recommender
from shopflow.models.recommenders.warm_start import Factors, FactorStore
from shopflow.models.selection import COMPARE, REFIT, RecommenderConfig, SelectionPlan
from shopflow.settings import Settings
from shopflow.warehouse import connect

FIRST_DAY = date(2026, 1, 1)
DAYS = 40
RUN_DATE = FIRST_DAY + timedelta(days=DAYS - 1)
NOUNS = ["CUSHION", "MUG", "LANTERN", "BLANKET", "VASE", "TEAPOT", "APRON", "CANDLE", "NOTEBOOK", "CLOCK"]
NEVER_SOLD = ["P-NEW-RED", "P-NEW-BLUE"]


def synthetic_shop(rng: np.random.Generator) -> tuple[list[tuple], list[tuple], list[tuple]]:
    """Red and blue shoppers buy and view products of their colour; four products launch in the last 8 days."""
    products = [
        (f"P-{colour}-{noun}", f"{colour.upper()} {noun}", None, None, None, None, FIRST_DAY)
        for colour in ("red", "blue")
        for noun in NOUNS
    ]
    launched_late = {f"P-{colour}-{noun}" for colour in ("red", "blue") for noun in ("STOOL", "TRAY")}
    products += [(pid, pid[2:].replace("-", " ").upper(), None, None, None, None, RUN_DATE) for pid in launched_late]
    products += [("P-NEW-RED", "RED PARASOL", None, None, None, None, RUN_DATE)]
    products += [("P-NEW-BLUE", "BLUE PARASOL", None, None, None, None, RUN_DATE)]
    clicks, orders = [], []
    for user in range(60):
        colour = "red" if user % 2 == 0 else "blue"
        mine = [pid for pid, *_ in products if f"-{colour}-" in pid.lower() and pid not in launched_late]
        late = [pid for pid in launched_late if f"-{colour}-" in pid.lower()]
        for offset in sorted(rng.choice(DAYS, size=8, replace=False)):
            day = FIRST_DAY + timedelta(days=int(offset))
            choices = mine + (late if offset >= DAYS - 8 else [])
            product = choices[rng.integers(len(choices))]
            clicks.append((f"U{user:02d}", product, "view", day))
            if rng.random() < 0.5:
                orders.append((f"U{user:02d}", product, int(rng.integers(1, 4)), day))
    return clicks, orders, products


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """One data root for the module: the stage runs once and every test reads its result."""
    settings = Settings(home=tmp_path_factory.mktemp("recommender-stage"))
    settings.ensure_dirs()
    return settings


@pytest.fixture(scope="module")
def stage_result(settings: Settings, write_marts, minilm) -> RecommenderStageResult:
    clicks, orders, products = synthetic_shop(np.random.default_rng(11))
    write_marts(settings.warehouse_path, clicks, orders, products)
    return run_recommender_stage(settings, RUN_DATE, encoder=minilm)


def test_metrics_json_holds_every_candidate_with_intervals_windows_and_counts(
    stage_result: RecommenderStageResult, settings: Settings
) -> None:
    path = settings.reports_dir / RUN_DATE.isoformat() / "metrics.json"
    assert stage_result.metrics_path == path
    metrics = json.loads(path.read_text())
    assert list(metrics["candidates"]) == list(DEFAULT_CANDIDATES)
    for candidate in metrics["candidates"].values():
        assert set(candidate["holdout"]) == {
            "ndcg@10", "recall@10", "map@10", "precision@10", "coverage@10", "cold_auc", "cold_recall@10"
        }  # fmt: skip
        ndcg = candidate["holdout"]["ndcg@10"]
        assert ndcg["ci95"][0] <= ndcg["value"] <= ndcg["ci95"][1]
        assert candidate["trials"] and "validation_ndcg@10" in candidate
    assert metrics["split"]["holdout_window"] == ["2026-01-31", "2026-02-09"]  # 40 days → a 10-day holdout
    assert metrics["holdout_targets"]["evaluated_users"] > 0
    assert metrics["embeddings"]["encoded"] == 26 and metrics["embeddings"]["cached"] == 0
    best = max(metrics["candidates"], key=lambda name: metrics["candidates"][name]["validation_ndcg@10"])
    assert metrics["selected"]["name"] == stage_result.model_name == best


def test_recommendations_are_top_20_unseen_products_per_active_user(stage_result: RecommenderStageResult) -> None:
    recommendations = stage_result.recommendations
    assert list(recommendations.columns) == list(RECOMMENDATION_COLUMNS)
    matrix = stage_result.model.fitted
    seen_per_user = dict(zip(matrix.user_ids, np.diff(matrix.user_items.indptr), strict=True))
    ranks = recommendations.groupby("user_id")["rank"].agg(list)
    assert len(ranks) == 60  # every user was active within ACTIVE_DAYS
    for user, user_ranks in ranks.items():  # 20, or every unseen product when fewer are left
        assert user_ranks == list(range(1, min(20, matrix.n_items - seen_per_user[user]) + 1))
    seen = {(matrix.user_ids[u], matrix.item_ids[i]) for u, i in zip(*matrix.user_items.nonzero(), strict=True)}
    assert not seen & set(zip(recommendations["user_id"], recommendations["product_id"], strict=True))
    assert (recommendations["model_version"] == stage_result.model_version).all()
    assert (recommendations["run_date"] == pd.Timestamp(RUN_DATE)).all()


def test_similar_products_cover_the_catalogue_including_never_sold_products(
    stage_result: RecommenderStageResult,
) -> None:
    similar = stage_result.similar_products
    assert list(similar.columns) == list(SIMILAR_PRODUCT_COLUMNS)
    assert similar["product_id"].nunique() == 26
    assert set(NEVER_SOLD) <= set(similar["product_id"])
    assert (similar["product_id"] != similar["similar_product_id"]).all()


def test_tables_are_written_to_the_marts_schema(stage_result: RecommenderStageResult, settings: Settings) -> None:
    with connect(settings) as con:
        counts = write_recommendation_tables(con, stage_result.recommendations, stage_result.similar_products)
        # a re-run replaces, never appends
        write_recommendation_tables(con, stage_result.recommendations, stage_result.similar_products)
        rows = {table: con.execute(f"select count(*) from marts.{table}").fetchall()[0][0] for table in counts}
        types = dict(
            con.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = 'marts' and table_name = 'recommendations' order by ordinal_position"
            ).fetchall()
        )
    assert (
        rows
        == counts
        == {
            "recommendations": len(stage_result.recommendations),
            "similar_products": len(stage_result.similar_products),
        }
    )
    assert types == {column: sql_type.upper() for column, sql_type in RECOMMENDATION_COLUMNS.items()}


def test_the_selected_model_round_trips_through_a_directory(stage_result: RecommenderStageResult, tmp_path) -> None:
    loaded = load_recommender(stage_result.model.save(tmp_path / "selected"))
    pd.testing.assert_frame_equal(loaded.recommend(k=20), stage_result.model.recommend(k=20))


def test_the_next_night_refits_the_champions_configuration_without_comparing(
    stage_result: RecommenderStageResult, settings: Settings, minilm
) -> None:
    champion = stage_result.model
    config = RecommenderConfig(champion.name, asdict(champion.params), champion.version)
    next_night = RUN_DATE + timedelta(days=1)

    refit = run_recommender_stage(settings, next_night, encoder=minilm, champion=config)

    assert refit.comparison is None and refit.selection.mode == REFIT
    assert (refit.model_name, asdict(refit.model.params)) == (config.family, config.params)
    metrics = json.loads(refit.metrics_path.read_text())
    assert "candidates" not in metrics and metrics["selection"]["last_comparison"] == RUN_DATE.isoformat()
    assert metrics["selected"]["validation_ndcg@10"] is None and metrics["seconds"]["compare"] == 0.0
    assert refit.text_params == stage_result.text_params  # the comparison's tuned text model serves cold products
    served = ["user_id", "rank"]  # no event after RUN_DATE: the same users get the same number of products
    pd.testing.assert_frame_equal(refit.recommendations[served], stage_result.recommendations[served])
    assert (refit.recommendations["run_date"] == pd.Timestamp(next_night)).all()

    weekly = Settings(home=settings.home, recommender_compare_every_days=1)
    compared = run_recommender_stage(weekly, next_night, candidates=("popularity",), encoder=minilm, champion=config)
    assert compared.selection.mode == COMPARE and "1 day(s) old" in compared.selection.reason


def test_refit_nights_start_from_the_previous_nights_factors_and_a_rerun_from_the_same_ones(
    stage_result: RecommenderStageResult, settings: Settings, minilm
) -> None:
    als = RecommenderConfig("als", {"factors": 16, "iterations": 15}, "1")  # a shape no earlier night fitted
    night_2, night_3 = RUN_DATE + timedelta(days=1), RUN_DATE + timedelta(days=2)
    factors_dir = settings.recommender_factors_dir

    first = run_recommender_stage(settings, night_2, encoder=minilm, champion=als)
    assert first.model.warm_started_from is None  # no earlier factors of this shape
    second = run_recommender_stage(settings, night_3, encoder=minilm, champion=als)
    assert second.model.warm_started_from == night_2
    assert second.metrics["selected"]["warm_start"] == {"from": night_2.isoformat(), "iterations": 2}
    assert sorted(path.stem for path in factors_dir.glob("*.npz")) == [night_2.isoformat(), night_3.isoformat()]

    rerun = run_recommender_stage(settings, night_3, encoder=minilm, champion=als)
    assert (rerun.model.warm_started_from, rerun.model_version) == (night_2, second.model_version)
    pd.testing.assert_frame_equal(rerun.recommendations, second.recommendations)

    from_scratch = Settings(home=settings.home, recommender_warm_start_iterations=0)
    cold = run_recommender_stage(from_scratch, night_3, encoder=minilm, champion=als)
    assert cold.model.warm_started_from is None and cold.metrics["selected"]["warm_start"] is None
    assert cold.model_version != second.model_version


def test_only_a_refit_night_starts_from_an_earlier_nights_factors(tmp_path) -> None:
    settings = Settings(home=tmp_path)
    store = FactorStore(settings.recommender_factors_dir)
    one = np.ones((1, 4), dtype=np.float32)
    store.keep(Factors(RUN_DATE, {"family": "als"}, np.array(["u1"]), np.array(["i1"]), one, one))
    tomorrow = RUN_DATE + timedelta(days=1)
    refit = night_warm_start(store, SelectionPlan(REFIT, "champion"), tomorrow, settings)
    assert (refit.factors.fitted_on, refit.iterations) == (RUN_DATE, settings.recommender_warm_start_iterations)
    assert night_warm_start(store, SelectionPlan(COMPARE, "weekly"), tomorrow, settings) is None  # random factors
    assert night_warm_start(store, SelectionPlan(REFIT, "champion"), RUN_DATE, settings) is None  # none earlier
    cold = Settings(home=tmp_path, recommender_warm_start_iterations=0)
    assert night_warm_start(store, SelectionPlan(REFIT, "champion"), tomorrow, cold) is None


def test_on_a_large_shop_candidates_are_compared_on_a_sample_of_users_and_the_model_fits_everyone(
    stage_result: RecommenderStageResult, settings: Settings, minilm
) -> None:
    sampled = Settings(home=settings.home, recommender_max_users=30, recommender_compare_every_days=1)
    result = run_recommender_stage(sampled, RUN_DATE, candidates=("popularity", "item_knn"), encoder=minilm)
    assert len(result.comparison.train.user_ids) <= 30 < len(stage_result.comparison.train.user_ids)
    assert set(result.comparison.train.user_ids) <= set(stage_result.comparison.train.user_ids)
    assert (
        result.metrics["holdout_targets"]["evaluated_users"]
        < stage_result.metrics["holdout_targets"]["evaluated_users"]
    )
    assert result.model.fitted.n_users == stage_result.model.fitted.n_users == 60  # the night's model knows everyone
    assert result.recommendations["user_id"].nunique() == 60


def test_cold_products_take_their_similar_products_from_text_when_the_model_has_none(
    checkerboard, checkerboard_embeddings, parity
) -> None:
    collaborative = create_recommender("ease").fit(checkerboard)
    text = create_recommender("content").fit(checkerboard, checkerboard_embeddings)
    similar = similar_products_frame(collaborative, "ease-v", RUN_DATE, text)
    by_model = similar.groupby("model_name")["product_id"].unique()
    assert sorted(by_model["content"]) == ["cold-even", "cold-odd"]
    assert len(by_model["ease"]) == checkerboard.n_items - 2
    cold_rows = similar[similar["model_name"] == "content"]
    assert (cold_rows["product_id"].map(parity) == cold_rows["similar_product_id"].map(parity)).all()


def test_active_users_are_those_with_an_interaction_in_the_last_days() -> None:
    matrix = InteractionMatrix(
        sparse.csr_matrix(np.ones((2, 2), dtype=np.float32)),
        np.array(["recent", "lapsed"]),
        np.array(["x", "y"]),
        sparse.csr_matrix(np.array([[200.0, 3.0], [120.0, 91.0]], dtype=np.float32)),
    )
    assert active_users(matrix, active_days=90).tolist() == ["recent"]


def test_embed_catalogue_fills_the_cache_shard_by_shard_and_then_has_nothing_to_do(
    tmp_path, write_marts, minilm
) -> None:
    settings = Settings(home=tmp_path / "home")
    products = [
        (f"P{i}", f"{colour} {noun}", None, None, None, None, FIRST_DAY)
        for i, (colour, noun) in enumerate((c, n) for c in ("RED", "BLUE") for n in NOUNS[:4])
    ]
    write_marts(settings.warehouse_path, [], [], products)
    seen_shards: list[list[str]] = []

    def encode_shards(parts: list[list[str]]) -> list[np.ndarray]:
        seen_shards.extend(parts)
        return [minilm.encode(part) for part in parts]

    first = embed_catalogue(settings, 3, encode_shards)
    again = embed_catalogue(settings, 3, encode_shards)

    assert first == {"products": 8, "encoded": 8, "shards": 3}
    assert again == {"products": 8, "encoded": 0, "shards": 0}
    assert [len(part) for part in seen_shards] == [3, 3, 2]
    texts = [text for part in seen_shards for text in part]
    cached = embed_texts(texts, minilm, settings.cache_dir)
    assert cached.encoded == 0  # everything came from the cache the shards filled...
    np.testing.assert_allclose(cached.vectors, minilm.encode(texts), atol=1e-5)  # ...and equals one unsharded pass
