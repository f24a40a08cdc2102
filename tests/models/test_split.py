"""The temporal split: windows, shrinking on short histories, and no holdout event in train."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from shopflow.models.interactions import EventLog, InteractionWeights
from shopflow.models.split import TemporalSplit


def test_online_retail_span_gets_the_default_35_day_windows() -> None:
    split = TemporalSplit.plan(date(2010, 12, 1), date(2011, 12, 9))
    assert split.holdout_start == date(2011, 11, 5)  # 2011-11-05 .. 2011-12-09 is 35 days
    assert split.validation_start == date(2011, 10, 1)  # 2011-10-01 .. 2011-11-04 is 35 days
    assert split.to_dict()["holdout_days"] == 35 and split.to_dict()["validation_days"] == 35


def test_short_histories_shrink_the_windows_and_too_short_ones_are_refused() -> None:
    split = TemporalSplit.plan(date(2026, 1, 1), date(2026, 1, 30))  # 30 days
    assert split.to_dict()["holdout_days"] == 7  # 30 // 4
    assert split.to_dict()["validation_days"] == 5  # (30 − 7) // 4
    with pytest.raises(ValueError, match="needs 8"):
        TemporalSplit.plan(date(2026, 1, 1), date(2026, 1, 7))


def test_no_holdout_or_validation_event_lands_in_train() -> None:
    # one product per day, so a matrix's non-empty columns tell exactly which days it contains
    days = [date(2026, 1, 1) + timedelta(days=offset) for offset in range(60)]
    daily = pd.DataFrame(
        {
            "user_id": [f"u{offset % 7}" for offset in range(60)],
            "product_id": [f"p{offset:02d}" for offset in range(60)],
            "day": pd.to_datetime(days),
            "n_views": 1,
            "n_add_to_cart": 0,
            "n_remove_from_cart": 0,
            "units_bought": 0,
            "units_returned": 0,
        }
    )
    log = EventLog.from_daily_frame(
        daily, np.array([f"p{offset:02d}" for offset in range(60)]), InteractionWeights(1, 3, 10)
    )
    split = TemporalSplit.plan(log.first_day, log.last_day)

    def days_in(matrix) -> set[date]:
        return {days[column] for column in np.flatnonzero(matrix.item_user_counts())}

    train, holdout = log.window(None, split.holdout_start), log.window(split.holdout_start, split.holdout_end)
    fit, validation = log.window(None, split.validation_start), log.window(split.validation_start, split.holdout_start)
    assert max(days_in(train)) < split.holdout_start <= min(days_in(holdout))
    assert max(days_in(fit)) < split.validation_start <= min(days_in(validation))
    assert max(days_in(validation)) < split.holdout_start
    assert days_in(train) | days_in(holdout) == set(days)
