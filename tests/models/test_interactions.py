"""Interaction weights, day windows and the id-indexed matrix."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from shopflow.models.interactions import (
    EVENT_COUNT_COLUMNS,
    EventLog,
    InteractionMatrix,
    InteractionWeights,
    align_rows,
    read_daily_events,
)
from shopflow.settings import PROJECT_ROOT

WEIGHTS = InteractionWeights(view=1.0, add_to_cart=3.0, purchase=10.0)


def test_weights_are_read_from_the_dbt_project() -> None:
    assert InteractionWeights.from_dbt_project(PROJECT_ROOT / "dbt_project") == WEIGHTS


@pytest.fixture
def dbt_unit_test_events(write_marts, tmp_path: Path) -> pd.DataFrame:
    """The rows of dbt's ``interactions_net_returns_and_weight_events`` unit test, as marts, read back daily."""
    clicks = [
        ("U1", "P1", "view", date(2026, 1, 1)),
        ("U1", "P1", "view", date(2026, 1, 1)),
        ("U1", "P1", "add_to_cart", date(2026, 1, 1)),
        ("U2", "P1", "add_to_cart", date(2026, 1, 1)),
        ("U2", "P1", "remove_from_cart", date(2026, 1, 1)),
        ("U2", "P1", "purchase", date(2026, 1, 1)),  # informational: orders carry the purchase weight
    ]
    orders = [("U1", "P1", 3, date(2026, 1, 1)), ("U3", "P2", 2, date(2026, 1, 1)), ("U3", "P2", -2, date(2026, 1, 3))]
    path = write_marts(tmp_path / "warehouse.duckdb", clicks, orders, [])
    with duckdb.connect(str(path), read_only=True) as con:
        return read_daily_events(con, until=date(2026, 1, 31))


def test_daily_events_sum_clicks_and_order_lines_per_user_product_day(dbt_unit_test_events: pd.DataFrame) -> None:
    rows = dbt_unit_test_events.sort_values(["user_id", "day"]).to_dict("records")
    assert [
        (
            r["user_id"],
            r["n_views"],
            r["n_add_to_cart"],
            r["n_remove_from_cart"],
            r["units_bought"],
            r["units_returned"],
        )
        for r in rows
    ] == [("U1", 2, 1, 0, 3, 0), ("U2", 0, 1, 1, 0, 0), ("U3", 0, 0, 0, 2, 0), ("U3", 0, 0, 0, 0, 2)]


def test_window_weights_equal_dbt_fct_interactions(dbt_unit_test_events: pd.DataFrame) -> None:
    log = EventLog.from_daily_frame(dbt_unit_test_events, np.array(["P1", "P2"]), WEIGHTS)
    everything = log.window()
    # U1/P1: 1·2 views + 3·(1 cart − 0 removed) + 10·ln(1 + 3 units) = 2 + 3 + 13.862944 = 18.862944 (= dbt's test)
    # U2/P1: the cart was removed → 0 → not an interaction; U3/P2: 2 bought − 2 returned → 0 → not one either
    assert everything.user_ids.tolist() == ["U1"]
    np.testing.assert_allclose(everything.user_items.toarray(), [[18.862943611198908, 0.0]], rtol=1e-6)
    # a window that ends before the return: U3 still holds 2 units → 10·ln(3) = 10.986123
    before_return = log.window(end=date(2026, 1, 2))
    assert before_return.user_ids.tolist() == ["U1", "U3"]
    np.testing.assert_allclose(before_return.user_items.toarray()[1], [0.0, 10.986123], rtol=1e-6)


def test_windows_are_half_open_and_record_days_since_the_last_interaction() -> None:
    daily = pd.DataFrame(
        {
            "user_id": ["a", "a", "b"],
            "product_id": ["x", "x", "y"],
            "day": pd.to_datetime(["2026-01-01", "2026-01-05", "2026-01-10"]),
            "n_views": [1, 1, 1],
            "n_add_to_cart": [0, 0, 0],
            "n_remove_from_cart": [0, 0, 0],
            "units_bought": [0, 0, 0],
            "units_returned": [0, 0, 0],
        }
    )
    log = EventLog.from_daily_frame(daily, np.array(["x", "y", "z"]), WEIGHTS)
    assert (log.first_day, log.last_day) == (date(2026, 1, 1), date(2026, 1, 10))
    window = log.window(date(2026, 1, 1), date(2026, 1, 10))  # 2026-01-10 itself is outside
    assert window.user_ids.tolist() == ["a"] and window.item_ids.tolist() == ["x", "y", "z"]
    assert window.user_items.toarray().tolist() == [[2.0, 0.0, 0.0]]
    assert window.days_since_last.toarray().tolist() == [[5.0, 0.0, 0.0]]  # last view 01-05, window ends 01-10
    assert window.item_user_counts(within_days=5).tolist() == [1, 0, 0]
    assert window.item_user_counts(within_days=4).tolist() == [0, 0, 0]


def test_matrix_ids_positions_and_alignment() -> None:
    frame = pd.DataFrame({"user_id": ["b", "a", "b"], "product_id": ["y", "x", "y"], "weight": [1.0, 2.0, 3.0]})
    matrix = InteractionMatrix.from_frame(frame, np.array(["x", "y"]))
    assert matrix.user_ids.tolist() == ["a", "b"]
    assert matrix.user_items.toarray().tolist() == [[2.0, 0.0], [0.0, 4.0]]  # duplicates summed
    assert matrix.user_rows(np.array(["b", "nobody"])).tolist() == [1, -1]
    assert align_rows(matrix, np.array(["nobody", "b"])).toarray().tolist() == [[0.0, 0.0], [0.0, 4.0]]
    with pytest.raises(ValueError, match="vocabulary"):
        InteractionMatrix.from_frame(frame, np.array(["x"]))


def test_a_user_sample_keeps_whole_users_with_all_their_events() -> None:
    daily = pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u2", "u3", "u3", "u4"],
            "product_id": ["a", "b", "a", "c", "a", "b"],
            "day": pd.to_datetime(["2026-01-01", "2026-01-02", "2026-01-01", "2026-01-03", "2026-01-04", "2026-01-02"]),
        }
        | {name: [1.0] * 6 for name in EVENT_COUNT_COLUMNS}
    )
    log = EventLog.from_daily_frame(daily, np.array(["a", "b", "c"]), InteractionWeights(1.0, 2.0, 3.0))
    sample = log.sample_users(2, seed=5)
    assert len(sample.user_ids) == 2 and set(sample.user_ids) < set(log.user_ids)
    assert sample.sample_users(2) is sample and log.sample_users(4) is log
    whole = log.window().user_items.toarray()
    rows = [list(log.user_ids).index(user) for user in sample.user_ids]
    np.testing.assert_array_equal(sample.window().user_items.toarray(), whole[rows])  # every event of a kept user
    assert sample.sample_users(1, seed=5).user_ids.tolist() == sample.sample_users(1, seed=5).user_ids.tolist()


def test_categorical_ids_with_unused_categories_code_like_plain_strings() -> None:
    # a warehouse read delivers ids as categoricals whose categories are neither sorted nor all used
    daily = pd.DataFrame(
        {
            "user_id": ["u3", "u1", "u3", "u2"],
            "product_id": ["b", "a", "a", "b"],
            "day": pd.to_datetime(["2026-01-01", "2026-01-02", "2026-01-02", "2026-01-03"]),
        }
        | {name: [1.0] * 4 for name in EVENT_COUNT_COLUMNS}
    )
    plain = EventLog.from_daily_frame(daily, np.array(["a", "b"]), WEIGHTS)
    users = pd.Categorical(daily["user_id"], categories=["zz-unused", "u3", "u2", "aa-unused", "u1"])
    coded = EventLog.from_daily_frame(daily.assign(user_id=users), np.array(["a", "b"]), WEIGHTS)
    assert coded.user_ids.tolist() == plain.user_ids.tolist() == ["u1", "u2", "u3"]
    assert coded.user_codes.tolist() == plain.user_codes.tolist() == [2, 0, 2, 1]
    missing = pd.Categorical([None, "u1", "u3", "u2"], categories=["u3", "u1", "u2"])
    with pytest.raises(ValueError, match="without a user_id"):
        EventLog.from_daily_frame(daily.assign(user_id=missing), np.array(["a", "b"]), WEIGHTS)
