"""Warm starts on the checkerboard: yesterday's factors aligned by id, used only by models of their shape, stored per
night."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from shopflow.models.interactions import InteractionMatrix
from shopflow.models.recommenders import create_recommender
from shopflow.models.recommenders.warm_start import KEEP_NIGHTS, Factors, FactorStore, WarmStart

YESTERDAY, TODAY = date(2026, 3, 1), date(2026, 3, 2)
NEWCOMER = "u49"  # an odd user who arrives today
FACTOR_ARRAYS = ("shape", "user_ids", "item_ids", "user_factors", "item_factors")


def yesterday_of(matrix: InteractionMatrix) -> InteractionMatrix:
    """The checkerboard as it was yesterday: without the newcomer."""
    rows = matrix.user_ids != NEWCOMER
    return InteractionMatrix(matrix.user_items[rows], matrix.user_ids[rows], matrix.item_ids)


@pytest.fixture(scope="module")
def yesterdays_factors(checkerboard) -> Factors:
    return create_recommender("als").fit(yesterday_of(checkerboard)).fitted_factors(YESTERDAY)


def test_a_fit_starts_from_the_factors_of_the_same_ids(checkerboard, yesterdays_factors) -> None:
    # zero iterations: the model's factors are exactly where it started
    model = create_recommender("als").fit(checkerboard, warm_start=WarmStart(yesterdays_factors, iterations=0))
    assert model.warm_started_from == YESTERDAY
    rows = {user: row for row, user in enumerate(yesterdays_factors.user_ids)}
    for row, user in enumerate(checkerboard.user_ids):
        expected = yesterdays_factors.user_factors[rows[user]] if user in rows else np.zeros(64, dtype=np.float32)
        np.testing.assert_array_equal(model.model.user_factors[row], expected)
    np.testing.assert_array_equal(model.model.item_factors, yesterdays_factors.item_factors)


def test_one_iteration_from_yesterday_lands_near_a_full_refit_where_one_from_random_does_not(
    checkerboard, yesterdays_factors
) -> None:
    rows = np.arange(checkerboard.n_users)
    full = create_recommender("als").fit(checkerboard).score_users(rows)  # 15 iterations from random factors

    def distance_to_full(model) -> float:
        return float(np.linalg.norm(model.score_users(rows) - full) / np.linalg.norm(full))

    warm = create_recommender("als").fit(checkerboard, warm_start=WarmStart(yesterdays_factors, iterations=1))
    cold = create_recommender("als", iterations=1).fit(checkerboard)
    assert distance_to_full(warm) < 0.05 < 0.1 < distance_to_full(cold)  # measured: 0.027 and 0.122
    top = warm.recommend(np.array([NEWCOMER]), k=1)  # the newcomer, unknown yesterday, gets its withheld item
    assert top["product_id"].tolist() == [NEWCOMER.replace("u", "i")]


@pytest.mark.parametrize(
    ("name", "params"),
    [("als", {"factors": 32}), ("als", {"alpha": 0.25}), ("als_text", {}), ("bpr", {})],
)
def test_factors_of_another_shape_or_family_are_ignored(
    name, params, checkerboard, checkerboard_embeddings, yesterdays_factors
) -> None:
    warm = create_recommender(name, **params).fit(
        checkerboard, checkerboard_embeddings, warm_start=WarmStart(yesterdays_factors, iterations=0)
    )
    cold = create_recommender(name, **params).fit(checkerboard, checkerboard_embeddings)
    assert warm.warm_started_from is None
    pd.testing.assert_frame_equal(warm.recommend(k=5), cold.recommend(k=5))


def test_a_hybrid_passes_the_warm_start_to_its_factorisation_member(
    checkerboard, checkerboard_embeddings, yesterdays_factors
) -> None:
    hybrid = create_recommender("hybrid_cf", weights=(1.0, 0.0, 1.0)).fit(
        checkerboard, checkerboard_embeddings, warm_start=WarmStart(yesterdays_factors, iterations=0)
    )
    als = hybrid.members[0]
    assert (hybrid.warm_started_from, als.warm_started_from) == (YESTERDAY, YESTERDAY)
    factors = hybrid.fitted_factors(TODAY)
    assert factors.fitted_on == TODAY and factors.shape == yesterdays_factors.shape
    np.testing.assert_array_equal(factors.user_factors, als.model.user_factors)
    assert create_recommender("hybrid_cf", weights=(0.0, 1.0, 1.0)).fit(checkerboard).fitted_factors(TODAY) is None


def test_the_store_keeps_the_newest_nights_and_hands_out_an_earlier_nights_factors(
    yesterdays_factors, tmp_path
) -> None:
    store = FactorStore(tmp_path / "factors")
    assert store.latest_before(TODAY) is None
    nights = [date(2026, 2, 27), date(2026, 2, 28), YESTERDAY, TODAY]
    for night in nights:
        store.keep(Factors(night, **{key: getattr(yesterdays_factors, key) for key in FACTOR_ARRAYS}))
    assert sorted(path.stem for path in store.directory.glob("*.npz")) == [n.isoformat() for n in nights[-KEEP_NIGHTS:]]

    earlier = store.latest_before(TODAY)  # a re-run of tonight starts where tonight's first run did
    assert earlier.fitted_on == YESTERDAY and earlier.shape == yesterdays_factors.shape
    for key in FACTOR_ARRAYS[1:]:
        np.testing.assert_array_equal(getattr(earlier, key), getattr(yesterdays_factors, key))
    assert store.latest_before(date(2026, 3, 3)).fitted_on == TODAY
    assert store.latest_before(YESTERDAY) is None  # the older nights are gone


def test_an_unreadable_factors_file_means_a_fit_from_random_factors_not_a_failed_night(
    yesterdays_factors, tmp_path, caplog
) -> None:
    store = FactorStore(tmp_path / "factors")
    store.keep(yesterdays_factors)
    (store.directory / f"{YESTERDAY.isoformat()}.npz").write_bytes(b"cut short by a full disk")
    assert store.latest_before(TODAY) is None
    assert "cannot read" in caplog.text and "random factors" in caplog.text
    assert [path.name for path in store.directory.iterdir()] == [f"{YESTERDAY.isoformat()}.npz"]  # no partial left
