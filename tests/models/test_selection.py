"""When a night compares every candidate and when it refits the champion (plan_selection's rules, one by one)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest

from shopflow.models.recommenders import recommender_class
from shopflow.models.selection import COMPARE, REFIT, RecommenderConfig, plan_selection

COMPARED_ON = date(2026, 3, 1)
CANDIDATES = ("popularity", "als", "content")
ALS = RecommenderConfig("als", {"factors": 32}, recommender_class("als").version)


def write_metrics(reports_dir: Path, night: date, interactions: int, candidates=CANDIDATES) -> None:
    """A metrics.json as the stage writes it: a comparison night when ``candidates`` is not empty."""
    metrics = {"data": {"interactions": interactions}}
    if candidates:
        metrics["candidates"] = {name: {"params": {"name_of": name}} for name in candidates}
    folder = reports_dir / night.isoformat()
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps(metrics))


def plan(reports_dir: Path, night: date, interactions: int = 1000, champion=ALS, candidates=CANDIDATES):
    return plan_selection(reports_dir, night, interactions, candidates, champion, 7, 0.25)


@pytest.fixture
def reports(tmp_path: Path) -> Path:
    write_metrics(tmp_path, COMPARED_ON, 1000)
    write_metrics(tmp_path, COMPARED_ON + timedelta(days=1), 1010, candidates=())  # a refit night in between
    return tmp_path


def test_a_night_within_the_week_refits_the_champion_with_the_comparisons_tuned_parameters(reports: Path) -> None:
    night = plan(reports, COMPARED_ON + timedelta(days=6), interactions=1200)
    assert night.mode == REFIT and night.refit == ALS
    assert night.last_comparison.run_date == COMPARED_ON  # the refit night in between is not a comparison
    assert night.text_params("content") == {"name_of": "content"} and night.text_params("ease") == {}
    assert "6 day(s) ago" in night.reason and "+20%" in night.reason


@pytest.mark.parametrize(
    ("night", "interactions", "champion", "candidates", "reason"),
    [
        (COMPARED_ON + timedelta(days=7), 1000, ALS, CANDIDATES, "is 7 day(s) old"),
        (COMPARED_ON + timedelta(days=2), 1251, ALS, CANDIDATES, "interactions grew 25%"),
        (COMPARED_ON + timedelta(days=2), 1000, None, CANDIDATES, "no champion yet"),
        (COMPARED_ON + timedelta(days=2), 1000, RecommenderConfig("als", {}, "0-old"), CANDIDATES, "cannot rebuild"),
        (COMPARED_ON + timedelta(days=2), 1000, RecommenderConfig("gone", {}, "1"), CANDIDATES, "cannot rebuild"),
        (COMPARED_ON + timedelta(days=2), 1000, ALS, ("popularity", "als"), "candidate list changed"),
        (COMPARED_ON, 1000, ALS, CANDIDATES, "no earlier comparison"),  # a re-run of the comparison night
        (COMPARED_ON - timedelta(days=3), 900, ALS, CANDIDATES, "no earlier comparison"),  # a backfill
    ],
)
def test_these_nights_compare_every_candidate(reports, night, interactions, champion, candidates, reason) -> None:
    decided = plan(reports, night, interactions, champion, candidates)
    assert decided.mode == COMPARE and decided.refit is None
    assert reason in decided.reason


def test_without_any_recorded_comparison_the_night_compares(tmp_path: Path) -> None:
    (tmp_path / "2026-03-02").mkdir()
    (tmp_path / "2026-03-02" / "metrics.json").write_text("{not json")  # unreadable: ignored, not fatal
    write_metrics(tmp_path, date(2026, 3, 1), 1000, candidates=())
    decided = plan(tmp_path, date(2026, 3, 3))
    assert decided.mode == COMPARE and decided.reason == "no earlier comparison on record"


def test_the_plan_records_mode_reason_and_the_refitted_configuration(reports: Path) -> None:
    recorded = plan(reports, COMPARED_ON + timedelta(days=3)).to_dict()
    assert recorded.pop("reason").startswith("refit of the champion's configuration (als); last comparison 2026-03-01")
    assert recorded == {
        "mode": REFIT,
        "last_comparison": COMPARED_ON.isoformat(),
        "refit": {"family": "als", "params": {"factors": 32}},
    }
