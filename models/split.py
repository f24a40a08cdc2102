"""The temporal split: day windows for tuning, validation and the holdout, never overlapping, in time order.

::

    first_day ........ validation_start ........ holdout_start ........ last_day
    |  fit (tuning)    |  validation (tuning)    |  holdout (reported)   |
    |<---------------- train (the reported models) ------------------>|

Hyper-parameters and fusion weights are chosen on *validation* by models fitted on the days before it; the
reported models are refitted on all of *train* (everything before ``holdout_start``) and scored once on the
holdout. Windows are whole days; a window never holds an event of another.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

DEFAULT_HOLDOUT_DAYS = 35
DEFAULT_VALIDATION_DAYS = 35
MIN_DAYS = 8  # below this a window would be empty or the fit window too small to learn from


class InsufficientHistoryError(ValueError):
    """Too few days of events for a temporal split: a young shop, not a broken night."""


@dataclass(frozen=True)
class TemporalSplit:
    """Day boundaries of the protocol; every window is half-open ``[start, end)`` except the holdout's last day."""

    first_day: date
    validation_start: date
    holdout_start: date
    last_day: date

    @classmethod
    def plan(
        cls,
        first_day: date,
        last_day: date,
        holdout_days: int = DEFAULT_HOLDOUT_DAYS,
        validation_days: int = DEFAULT_VALIDATION_DAYS,
    ) -> TemporalSplit:
        """Holdout = the last ``holdout_days`` days, validation = the ``validation_days`` before it.

        On short histories each window is capped at a quarter of the days it is carved from (so a 30-day demo
        gets a 7-day holdout and a 5-day validation); the windows actually used are in ``to_dict()``.
        """
        span = (last_day - first_day).days + 1
        if span < MIN_DAYS:
            raise InsufficientHistoryError(
                f"{span} day(s) of events ({first_day}..{last_day}); a temporal split needs {MIN_DAYS}"
            )
        holdout = max(1, min(holdout_days, span // 4))
        validation = max(1, min(validation_days, (span - holdout) // 4))
        holdout_start = last_day - timedelta(days=holdout - 1)
        return cls(first_day, holdout_start - timedelta(days=validation), holdout_start, last_day)

    @property
    def holdout_end(self) -> date:
        """Exclusive end of the holdout window."""
        return self.last_day + timedelta(days=1)

    def to_dict(self) -> dict:
        return {
            "fit_window": [self.first_day.isoformat(), (self.validation_start - timedelta(days=1)).isoformat()],
            "validation_window": [
                self.validation_start.isoformat(),
                (self.holdout_start - timedelta(days=1)).isoformat(),
            ],
            "train_window": [self.first_day.isoformat(), (self.holdout_start - timedelta(days=1)).isoformat()],
            "holdout_window": [self.holdout_start.isoformat(), self.last_day.isoformat()],
            "holdout_days": (self.last_day - self.holdout_start).days + 1,
            "validation_days": (self.holdout_start - self.validation_start).days,
        }
