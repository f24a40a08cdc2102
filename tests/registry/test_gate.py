"""The promotion gate's arithmetic and the lineage helpers, on hand-made numbers (no MLflow)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

import duckdb
import numpy as np
import pytest
from registry_shop import shop_frames, write_shop

from shopflow.expectations.results import AuditReport, ExpectationOutcome
from shopflow.expectations.thresholds import ERROR, WARN
from shopflow.registry.gate import RecommenderConfig, is_better, paired_ndcg_comparison
from shopflow.registry.lineage import LINEAGE_TAGS, NightLineage, code_revision, data_snapshot_id
from shopflow.settings import Settings


def test_a_consistent_gain_is_better_and_its_interval_excludes_zero() -> None:
    champion = np.tile([0.2, 0.4, 0.6, 0.8], 25)
    comparison = paired_ndcg_comparison(champion + 0.05, champion)
    assert comparison.delta == pytest.approx(0.05)
    assert comparison.delta_ci95 == pytest.approx((0.05, 0.05))  # every user gains exactly 0.05
    assert comparison.evaluated_users == 100
    assert is_better(comparison, margin=0.05)
    assert not is_better(comparison, margin=0.06)


def test_a_gain_carried_by_a_few_users_is_not_enough() -> None:
    champion = np.full(100, 0.3)
    challenger = champion.copy()
    challenger[:2] = 1.0  # two users gain 0.7, the mean gains 0.014
    comparison = paired_ndcg_comparison(challenger, champion)
    assert comparison.delta == pytest.approx(0.014)
    assert comparison.delta_ci95[0] == 0.0  # some resamples draw neither user: the interval reaches zero
    assert not is_better(comparison, margin=0.0)


def test_a_loss_is_never_better_and_users_must_be_paired() -> None:
    champion = np.linspace(0.1, 0.9, 50)
    comparison = paired_ndcg_comparison(champion - 0.1, champion)
    assert comparison.delta_ci95[1] < 0 and not is_better(comparison, margin=0.0)
    with pytest.raises(ValueError, match="same evaluated users"):
        paired_ndcg_comparison(champion[:10], champion)


def test_a_config_round_trips_through_version_tags() -> None:
    config = RecommenderConfig("als", {"factors": 64, "regularization": 0.05}, "2")
    assert RecommenderConfig.from_tags(config.tags() | {"other": "x"}) == config


def test_lineage_tags_name_every_fact(monkeypatch) -> None:
    lineage = NightLineage(date(2026, 4, 1), "abc123", None, False, "2 errors", code_revision="deadbeef")
    assert lineage.tags() == {
        "lineage.run_date": "2026-04-01",
        "lineage.data_snapshot_id": "abc123",
        "lineage.dbt_invocation_id": "none",
        "lineage.validation_passed": "false",
        "lineage.validation_summary": "2 errors",
        "lineage.code_revision": "deadbeef",
    }
    assert tuple(lineage.tags()) == LINEAGE_TAGS
    assert len(code_revision().removesuffix("+dirty")) in (40, len("unknown"))


def test_the_data_snapshot_id_follows_the_marts_and_ignores_tables_written_after_the_audit(tmp_path) -> None:
    settings = Settings(home=tmp_path)
    frames = shop_frames()
    write_shop(settings.warehouse_path, frames)
    snapshot = data_snapshot_id(settings)
    assert snapshot == data_snapshot_id(settings) and len(snapshot) == 16
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute("create table marts.recommendations as select 'u' as user_id")  # a model output
    assert data_snapshot_id(settings) == snapshot
    write_shop(settings.warehouse_path, frames | {"fct_clicks": frames["fct_clicks"].iloc[1:]})  # one click less
    assert data_snapshot_id(settings) != snapshot


def test_lineage_from_the_audit_report_carries_its_outcome(tmp_path) -> None:
    settings = Settings(home=tmp_path)
    write_shop(settings.warehouse_path, shop_frames())
    failed = ExpectationOutcome(
        "orders", "orders", "expect_column_values_to_not_be_null", "order_id", ERROR, False, None, 10, 1, 10.0,
        [None], "order_id is never null", {"column": "order_id"},
    )  # fmt: skip
    passed = replace(failed, severity=WARN, success=True)
    night = date(2026, 4, 1)
    report = AuditReport(night, datetime(2026, 4, 2, 3), [failed, passed], elapsed_seconds=0.1)
    lineage = NightLineage.from_audit(settings, night, "inv-1", report.summary())
    assert (lineage.validation_passed, lineage.dbt_invocation_id) == (False, "inv-1")
    assert lineage.validation_summary == "2 expectations, 1 errors, 0 warnings"
    assert lineage.data_snapshot_id == data_snapshot_id(settings)
