"""audit_night on a tiny shop built with dbt: five clean nights, then a night whose prices are all garbled."""

import json
from datetime import date, timedelta

import duckdb
import pandas as pd
import pytest
from typer.testing import CliRunner

from shopflow.cli import app
from shopflow.contract import landing_path
from shopflow.expectations.audit import AuditError, AuditReport, audit_night
from shopflow.ingest import ingest_landing
from shopflow.settings import Settings
from shopflow.transform import build_warehouse

CLEAN_NIGHT = date(2026, 1, 5)
BROKEN_NIGHT = date(2026, 1, 6)


def deliveries(day: date) -> dict[str, list[dict]]:
    """One clean day of the shop: 20 order lines and clicks, 3 reviews, one new product (five on day one)."""
    first_day = day == date(2026, 1, 1)
    at = f"{day} 10:00:00"
    return {
        "products": [
            {"product_id": f"P{n}", "title": f"Lamp {n}", "price": "9.50", "attributes": '{"color": "oak"}'}
            | {"updated_at": at}
            for n in (range(5) if first_day else [day.day + 10])
        ],
        "orders": [
            {"order_id": f"O{day}-{n}", "user_id": f"U{n % 5}", "product_id": f"P{n % 5}", "quantity": "1"}
            | {"unit_price": "9.50", "ordered_at": at, "status": "placed", "currency": "EUR"}
            for n in range(20)
        ],
        "clicks": [
            {"event_id": f"E{day}-{n}", "user_id": f"U{n % 5}", "product_id": f"P{n % 5}", "event_type": "view"}
            | {"occurred_at": at}
            for n in range(20)
        ],
        "reviews": [
            {"review_id": f"R{day}-{n}", "product_id": "P1", "user_id": f"U{n}", "rating": "4", "body": "Bright"}
            | {"created_at": at}
            for n in range(3)
        ],
    }


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = Settings(home=tmp_path_factory.mktemp("audit"))
    for offset in range(6):
        day = date(2026, 1, 1) + timedelta(days=offset)
        for entity, rows in deliveries(day).items():
            if day == BROKEN_NIGHT and entity == "orders":
                rows = [row | {"unit_price": "12,50 EUR"} for row in rows]
            path = landing_path(settings.landing_dir, entity, day)
            path.parent.mkdir(parents=True, exist_ok=True)
            pd.DataFrame(rows).to_csv(path, index=False)
    ingest_landing(settings).raise_for_refusals()
    build_warehouse(settings, BROKEN_NIGHT)
    return settings


@pytest.fixture(scope="module")
def clean_report(shop: Settings) -> AuditReport:
    return audit_night(shop, CLEAN_NIGHT)


@pytest.fixture(scope="module")
def broken_report(shop: Settings) -> AuditReport:
    return audit_night(shop, BROKEN_NIGHT)


def stored(settings: Settings, night: date) -> list[tuple]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.execute(
            "select suite, expectation_type, column_name, severity, success, checked_at "
            "from audit.validation_results where run_date = ? order by all",
            [night],
        ).fetchall()


def test_a_clean_night_passes_every_expectation(clean_report: AuditReport) -> None:
    assert [o.describe(CLEAN_NIGHT) for o in clean_report.results if not o.success] == []
    clean_report.raise_for_errors()
    suites = {o.suite for o in clean_report.results}
    assert {"raw.orders", "raw.clicks", "raw.products", "raw.reviews", "audit.loads"} <= suites
    assert {"marts.fct_order_lines", "marts.dim_products", "quarantine.row_accounting"} <= suites
    assert {o.severity for o in clean_report.results} == {"error", "warn"}


def test_results_table_has_one_row_per_expectation(shop: Settings, clean_report: AuditReport) -> None:
    rows = stored(shop, CLEAN_NIGHT)
    assert len(rows) == len(clean_report.results)
    assert sorted(row[:5] for row in rows) == sorted(
        (o.suite, o.expectation_type, o.column, o.severity, o.success) for o in clean_report.results
    )
    with duckdb.connect(str(shop.warehouse_path), read_only=True) as con:
        volume = con.execute(
            "select observed_value, expectation_kwargs->>'$.max_value' from audit.validation_results "
            "where run_date = ? and suite = 'raw.orders' and severity = 'error' "
            "and expectation_type = 'expect_table_row_count_to_be_between'",
            [CLEAN_NIGHT],
        ).fetchall()
    assert volume == [("20", "200")]


def test_rerunning_a_night_replaces_its_rows(shop: Settings, clean_report: AuditReport, broken_report) -> None:
    other_night = stored(shop, BROKEN_NIGHT)
    again = audit_night(shop, CLEAN_NIGHT)
    rows = stored(shop, CLEAN_NIGHT)
    assert len(rows) == len(again.results) == len(clean_report.results)
    assert {row[-1] for row in rows} == {again.checked_at}
    assert stored(shop, BROKEN_NIGHT) == other_night


def test_json_and_html_artifacts_are_written(shop: Settings, clean_report: AuditReport) -> None:
    folder = shop.reports_dir / CLEAN_NIGHT.isoformat()
    artifact = json.loads((folder / "validation.json").read_text())
    assert artifact["run_date"] == "2026-01-05" and artifact["passed"] is True
    assert len(artifact["results"]) == len(clean_report.results)
    page = (folder / "validation.html").read_text()
    assert page.startswith("<!doctype html>") and "audit of the night 2026-01-05: passed" in page
    assert "<script" not in page and "http" not in page  # self-contained


def test_a_broken_night_fails_naming_entity_day_expectation_and_bad_values(
    shop: Settings, broken_report: AuditReport
) -> None:
    assert {(o.suite, o.expectation_type, o.column) for o in broken_report.errors} == {
        ("raw.orders", "expect_column_values_to_match_regex", "unit_price"),
        ("quarantine.share_by_reason", "expect_column_values_to_be_between", "share"),
    }
    with pytest.raises(AuditError) as failure:
        broken_report.raise_for_errors()
    message = str(failure.value)
    assert "audit of the night 2026-01-06 failed: 2 error-level expectation(s)" in message
    assert "orders on 2026-01-06 [raw.orders] expect_column_values_to_match_regex on unit_price" in message
    assert "20 of 20 values (100.0%) unexpected" in message
    assert "unit_price='12,50 EUR', _row_number=1" in message
    assert "entity='orders', quarantine_reason='bad_unit_price'" in message
    assert message.count("12,50 EUR") == 5  # up to five examples per expectation
    summary = broken_report.summary()
    assert summary["passed"] is False and len(summary["failed_errors"]) == 2
    page = (shop.reports_dir / "2026-01-06" / "validation.html").read_text()
    assert "FAILED: nothing may be published" in page and "12,50 EUR" in page


def test_the_audit_command_prints_the_summary_and_exits_1_on_errors(
    shop: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOPFLOW_HOME", str(shop.home))
    result = CliRunner().invoke(app, ["audit", "--date", BROKEN_NIGHT.isoformat()])
    assert result.exit_code == 1
    assert '"passed": false' in result.output
    assert "audit of the night 2026-01-06 failed: 2 error-level expectation(s)" in result.output
