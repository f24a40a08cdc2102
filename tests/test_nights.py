"""The night fingerprint: what makes a re-run a no-op, and what does not."""

import json
from datetime import date

import duckdb

from shopflow.ingest import ingest_landing
from shopflow.nights import finished_night, night_fingerprint
from shopflow.settings import Settings

DAY_1, DAY_2 = date(2026, 1, 1), date(2026, 1, 2)


def test_the_fingerprint_moves_with_deliveries_settings_and_the_run_date(settings: Settings, write_landing) -> None:
    write_landing("products", "2026-01-01", [{"product_id": "P1", "title": "Lamp"}])
    ingest_landing(settings, until=DAY_1)
    first = night_fingerprint(settings, DAY_1)
    assert night_fingerprint(settings, DAY_1) == first  # deterministic

    write_landing("products", "2026-01-02", [{"product_id": "P2", "title": "Chair"}])
    ingest_landing(settings, until=DAY_2)
    assert night_fingerprint(settings, DAY_1) == first  # a later delivery does not touch an earlier night
    assert night_fingerprint(settings, DAY_2) != first
    budget = settings.model_copy(update={"description_budget": settings.description_budget + 1})
    assert night_fingerprint(budget, DAY_1) != first


def test_only_a_published_night_with_the_same_fingerprint_counts_as_finished(settings: Settings, write_landing) -> None:
    write_landing("products", "2026-01-01", [{"product_id": "P1", "title": "Lamp"}])
    ingest_landing(settings, until=DAY_1)
    fingerprint = night_fingerprint(settings, DAY_1)
    assert finished_night(settings, DAY_1, fingerprint) is None  # never ran

    night = settings.reports_dir / "2026-01-01"
    night.mkdir(parents=True)
    tables = {"marts.dim_products": {"rows": 1, "hash": "42"}}
    (night / "nightly.json").write_text(json.dumps({"fingerprint": fingerprint, "published": {"tables": tables}}))
    assert finished_night(settings, DAY_1, fingerprint) is None  # nothing published
    with duckdb.connect(str(settings.analytics_path)) as con:
        con.execute(
            "create table snapshot_info as select date '2026-01-01' as run_date, ? as tables", [json.dumps(tables)]
        )
    assert finished_night(settings, DAY_1, fingerprint)["fingerprint"] == fingerprint
    assert finished_night(settings, DAY_1, "other") is None  # something changed since
