"""When the night compares every recommender candidate, and when it only refits the champion's configuration.

Comparing the candidates (tune each on validation, refit on train, score on the holdout, with bootstrap CIs) is
most of the recommender stage's cost, and on consecutive nights it keeps choosing the same model: one more day
barely moves a month of interactions. So a night **compares** when

* there is no champion yet, or this code cannot rebuild the champion's configuration (family removed or its
  version bumped);
* no earlier comparison is on record (``<reports_dir>/<night>/metrics.json`` with candidates), or the last one was
  for this night or a later one (a re-run or a backfill decides afresh);
* the last comparison is ``compare_every_days`` days old or more (weekly by default);
* the interactions grew by more than ``compare_growth`` since the last comparison (a shop growing fast);
* the candidate list changed since the last comparison;

and otherwise **refits** the champion's family and parameters on every event up to the night, which the
promotion gate then publishes as "refreshed". ``Settings.recommender_compare_every_days = 1`` compares nightly.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from shopflow.models.recommenders import recommender_class

log = logging.getLogger(__name__)

COMPARE = "compare"
REFIT = "refit"


@dataclass(frozen=True)
class RecommenderConfig:
    """A model to rebuild: its family (and that family's code version) and hyper-parameters."""

    family: str
    params: dict
    family_version: str

    def tags(self) -> dict[str, str]:
        return {
            "recommender.family": self.family,
            "recommender.params": json.dumps(self.params, sort_keys=True),
            "recommender.family_version": self.family_version,
        }

    @classmethod
    def from_tags(cls, tags: dict[str, str]) -> RecommenderConfig:
        return cls(
            tags["recommender.family"], json.loads(tags["recommender.params"]), tags["recommender.family_version"]
        )

    def check_buildable(self) -> None:
        """Raise unless this code has the family at the same version (KeyError: no such family; ValueError: another
        version)."""
        version = recommender_class(self.family).version
        if version != self.family_version:
            raise ValueError(f"{self.family} is version {version} in this code, the model's is {self.family_version}")


@dataclass(frozen=True)
class LastComparison:
    """What the latest earlier comparison left in its ``metrics.json``."""

    run_date: date
    interactions: int
    candidates: tuple[str, ...]
    tuned_params: dict[str, dict]  # family → its tuned parameters

    @classmethod
    def find(cls, reports_dir: Path, before: date) -> LastComparison | None:
        """The latest night before ``before`` whose recommender stage compared candidates, if any."""
        for path in sorted(reports_dir.glob("????-??-??/metrics.json"), reverse=True):
            night = date.fromisoformat(path.parent.name)
            if night >= before:
                continue
            try:
                metrics = json.loads(path.read_text())
                candidates = metrics.get("candidates")
                if not candidates:
                    continue
                return cls(
                    night,
                    int(metrics["data"]["interactions"]),
                    tuple(candidates),
                    {name: result["params"] for name, result in candidates.items()},
                )
            except (OSError, ValueError, KeyError, TypeError) as unreadable:
                log.warning("ignoring unreadable %s: %s", path, unreadable)
        return None


@dataclass(frozen=True)
class SelectionPlan:
    """The night's choice: compare all candidates, or refit ``refit`` (the champion's configuration)."""

    mode: str  # COMPARE or REFIT
    reason: str
    last_comparison: LastComparison | None = None
    refit: RecommenderConfig | None = None

    def text_params(self, family: str) -> dict:
        """Parameters the last comparison tuned for ``family`` ({} when it has none on record)."""
        if self.last_comparison is None:
            return {}
        return dict(self.last_comparison.tuned_params.get(family, {}))

    def to_dict(self) -> dict:
        last = self.last_comparison
        return {
            "mode": self.mode,
            "reason": self.reason,
            "last_comparison": last.run_date.isoformat() if last else None,
            "refit": {"family": self.refit.family, "params": self.refit.params} if self.refit else None,
        }


def plan_selection(
    reports_dir: Path,
    run_date: date,
    interactions: int,
    candidates: tuple[str, ...],
    champion: RecommenderConfig | None,
    compare_every_days: int,
    compare_growth: float,
) -> SelectionPlan:
    """Compare or refit tonight (rules in the module doc); ``interactions`` = user × product pairs up to tonight."""
    if champion is None:
        return SelectionPlan(COMPARE, "no champion yet")
    try:
        champion.check_buildable()
    except (KeyError, ValueError) as error:
        return SelectionPlan(COMPARE, f"this code cannot rebuild the champion: {error}")
    last = LastComparison.find(reports_dir, run_date)
    if last is None:
        return SelectionPlan(COMPARE, "no earlier comparison on record")
    age = (run_date - last.run_date).days
    if age >= compare_every_days:
        return SelectionPlan(COMPARE, f"last comparison {last.run_date} is {age} day(s) old", last)
    growth = interactions / max(last.interactions, 1) - 1
    if growth > compare_growth:
        return SelectionPlan(COMPARE, f"interactions grew {growth:.0%} since the comparison of {last.run_date}", last)
    if tuple(candidates) != last.candidates:
        return SelectionPlan(COMPARE, f"the candidate list changed since {last.run_date}", last)
    reason = (
        f"refit of the champion's configuration ({champion.family}); last comparison {last.run_date}, "
        f"{age} day(s) ago, interactions {growth:+.0%} since"
    )
    return SelectionPlan(REFIT, reason, last, champion)
