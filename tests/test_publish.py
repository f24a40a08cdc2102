import json
from datetime import date

import duckdb
import pytest

from shopflow.publish import publish_snapshot
from shopflow.settings import Settings
from shopflow.warehouse import connect


def build_fake_marts(settings: Settings, revenue: int) -> None:
    with connect(settings) as con:
        con.execute(
            "create schema if not exists marts; create schema if not exists quarantine; create schema if not exists raw"
        )
        con.execute(
            f"create or replace table marts.daily_kpis as select date '2026-01-01' as kpi_date, {revenue} as revenue"
        )
        con.execute(
            "create or replace table quarantine.row_accounting as select 'orders' as entity, true as is_balanced"
        )
        con.execute("create or replace table raw.orders as select 'secret' as raw_value")


def test_publish_copies_marts_and_quarantine_only(settings: Settings) -> None:
    build_fake_marts(settings, revenue=10)
    result = publish_snapshot(settings, date(2026, 1, 1), dbt_invocation_id="abc")
    assert set(result.tables) == {"marts.daily_kpis", "quarantine.row_accounting"}
    with duckdb.connect(str(settings.analytics_path), read_only=True) as con:
        assert con.execute("select revenue from marts.daily_kpis").fetchall() == [(10,)]
        run_date, invocation, tables = con.execute(
            "select run_date, dbt_invocation_id, tables from snapshot_info"
        ).fetchall()[0]
        schemas = {row[0] for row in con.execute("select schema_name from information_schema.schemata").fetchall()}
    assert (run_date, invocation) == (date(2026, 1, 1), "abc")
    assert json.loads(tables)["marts.daily_kpis"]["rows"] == 1
    assert "raw" not in schemas
    assert [p.name for p in settings.home.iterdir() if p.name.endswith(".tmp")] == []


def test_a_reader_of_the_old_snapshot_is_not_disturbed_and_new_readers_see_the_new_one(settings: Settings) -> None:
    build_fake_marts(settings, revenue=10)
    publish_snapshot(settings, date(2026, 1, 1))
    analyst = duckdb.connect(str(settings.analytics_path), read_only=True)  # holds the old file open
    build_fake_marts(settings, revenue=20)
    publish_snapshot(settings, date(2026, 1, 2))
    assert analyst.execute("select revenue from marts.daily_kpis").fetchall() == [(10,)]
    analyst.close()
    with duckdb.connect(str(settings.analytics_path), read_only=True) as con:
        assert con.execute("select revenue from marts.daily_kpis").fetchall() == [(20,)]


def test_nothing_to_publish_leaves_the_previous_snapshot(settings: Settings) -> None:
    build_fake_marts(settings, revenue=10)
    publish_snapshot(settings, date(2026, 1, 1))
    before = settings.analytics_path.read_bytes()
    with connect(settings) as con:
        con.execute("drop schema marts cascade; drop schema quarantine cascade")
    with pytest.raises(RuntimeError, match="nothing to publish"):
        publish_snapshot(settings, date(2026, 1, 2))
    assert settings.analytics_path.read_bytes() == before
    assert [p.name for p in settings.home.iterdir() if p.name.endswith(".tmp")] == []
