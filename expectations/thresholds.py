"""Every severity and threshold of the nightly audit, in one place.

Two severities: an ``error`` stops the night after the audit (nothing is published, no model is trained or
promoted, the previous snapshot stays), a ``warn`` is reported and the night goes on.

Row-level dirt is dbt's job (each bad row is quarantined with a reason), so the suites on tonight's raw
delivery judge the *distribution* of dirt: a share rule warns when more than ``warn`` of the checked values
are bad and fails the night when more than ``error`` are. The defaults let a normal dirty night through with a
warning (the demo shop's 2% dirt, Online Retail's anonymous order lines) and stop a night whose delivery is
broken as a whole (a new number or date format, a column shipped empty, ten times or a tenth of the usual rows).
Marts and the row accounting hold by construction, so any violation there is an ``error``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import yaml

ERROR = "error"
WARN = "warn"
#: Our severities as Great Expectations names them (an expectation's ``severity``).
GX_SEVERITY = {ERROR: "critical", WARN: "warning"}


#: A delivery is judged broken as a whole only from this many rows on (for volume: a median this large). Below
#: it, one or two bad rows are not a trend, so share and volume rules only warn (every bad row is still
#: quarantined): a 3-row catalogue delta with 2 bad prices, or 0 reviews where 2 are usual, is not an error.
MIN_ROWS_FOR_ERRORS = 20


@dataclass(frozen=True)
class BadShare:
    """Largest tolerated share (0–1) of bad values: above ``warn`` the check warns, above ``error`` it fails the
    night; ``None`` means the check has no such tier."""

    warn: float | None
    error: float | None

    def tiers(self, rows: int | None = None) -> list[tuple[str, float]]:
        """(severity, limit) for each tier the rule has, warn first; for a delivery of ``rows`` rows, the error
        tier only from MIN_ROWS_FOR_ERRORS rows on (``None``: the caller applies that minimum itself)."""
        return _tiers(self.warn, self.error, rows)


#: Values of tonight's delivery that are missing, unparsable, outside the allowed set or range, or too long.
RAW_VALUES = BadShare(warn=0.01, error=0.50)
#: A missing user id is a guest checkout or a logged-out visitor: quarantined, but it can dominate a real day
#: (Online Retail: 25% of all order lines, 62% on 2011-12-09, 87% on 2011-08-30). Only an (almost) entirely
#: anonymous delivery is an error.
ANONYMOUS_USERS = BadShare(warn=0.01, error=0.99)
#: Repeated keys or identical rows within tonight's delivery (dbt keeps the first copy).
DUPLICATES = BadShare(warn=0.01, error=None)
#: Reviews by users with no clean order or click so far (possible fake or spam reviews).
UNKNOWN_REVIEWERS = BadShare(warn=0.05, error=None)

#: Share of tonight's delivered rows that cleaning quarantined, per entity (any reason).
QUARANTINED_PER_ENTITY = BadShare(warn=0.05, error=None)
#: Share of tonight's delivered rows quarantined for one reason: one reason taking half a delivery means the
#: delivery (or the cleaning rule) is broken. Superseded deliveries are not counted: a redelivered day is normal.
QUARANTINED_PER_REASON = BadShare(warn=0.05, error=0.50)
#: Reasons with their own limit (see ANONYMOUS_USERS).
QUARANTINED_PER_REASON_OVERRIDES = {"missing_user_id": BadShare(warn=0.05, error=0.99)}


@dataclass(frozen=True)
class VolumeRule:
    """Tonight's delivered rows against the median of the entity's previous deliveries (newest version per day).

    The check warns when the rows reach ``warn_factor`` × the median or fall to 1 / ``warn_factor`` of it, and fails
    the night at ``error_factor`` (so a 10× spike and a 90% drop are errors with the defaults). With fewer than
    ``min_history`` earlier deliveries, or a zero median, there is nothing to compare against and the check only
    records tonight's rows.
    """

    history: int = 7
    min_history: int = 3
    warn_factor: float | None = 3.0
    error_factor: float | None = 10.0

    def tiers(self, median: float) -> list[tuple[str, float]]:
        """(severity, factor) for each tier the rule has, warn first; the error tier only from a median of
        MIN_ROWS_FOR_ERRORS rows on."""
        return _tiers(self.warn_factor, self.error_factor, median)


VOLUME = {
    "orders": VolumeRule(),
    "clicks": VolumeRule(),
    "reviews": VolumeRule(),
    # A products file is a snapshot or a delta: the first day lists the whole catalogue, later days a handful.
    "products": VolumeRule(error_factor=None),
}

#: An optional column filled in at least this share of the entity's previous delivery must not be empty tonight
#: (a column the export stopped writing); sparse columns such as a catalogue description are not judged.
DROPPED_COLUMN_PREVIOUSLY_FILLED = 0.5

#: The newest event of a delivery may be at most this many days older than its delivery day (a stale re-send).
FRESHNESS_DAYS = 1


def _tiers(warn: float | None, error: float | None, size: float | None) -> list[tuple[str, float]]:
    large_enough = size is None or size >= MIN_ROWS_FOR_ERRORS
    tiers = ((WARN, warn), (ERROR, error if large_enough else None))
    return [(severity, limit) for severity, limit in tiers if limit is not None]


@dataclass(frozen=True)
class CleaningLimits:
    """The business limits dbt cleans with (``vars`` in dbt_project.yml), so the audit judges by the same rules."""

    shop_opened_at: datetime
    max_clock_skew_hours: int
    max_quantity: int
    max_unit_price: float
    max_text_length: int

    @classmethod
    def from_dbt_project(cls, dbt_project_dir: Path) -> CleaningLimits:
        dbt_vars = yaml.safe_load((dbt_project_dir / "dbt_project.yml").read_text())["vars"]
        return cls(
            shop_opened_at=datetime.fromisoformat(str(dbt_vars["shop_opened_at"])),
            max_clock_skew_hours=int(dbt_vars["max_clock_skew_hours"]),
            max_quantity=int(dbt_vars["max_quantity"]),
            max_unit_price=float(dbt_vars["max_unit_price"]),
            max_text_length=int(dbt_vars["max_text_length"]),
        )
