"""The real nightly flow, end to end, on a tiny synthetic shop."""

import os
import subprocess
import sys
import threading
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.context import TaskRunContext
from prefect.task_runners import ThreadPoolTaskRunner

from shopflow.demo import DemoConfig, generate_demo_shop
from shopflow.expectations.thresholds import MIN_ROWS_FOR_ERRORS
from shopflow.flows.nightly import dbt_build_task, ingest_task, nightly, run_shard_tasks
from shopflow.ingest import IngestError
from shopflow.settings import Settings
from shopflow.warehouse import connect, table_fingerprints

TINY_SHOP = DemoConfig(products=40, users=60, days=3, seed=7, start=date(2026, 3, 1), dirt_rate=0.05)

#: The generator's dirt kinds and the quarantine reason cleaning must give each (the generator's ground truth).
EXPECTED_REASON = {
    "duplicate_row": "duplicate_row",
    "duplicate_across_days": "duplicate_row",
    "duplicate_event": "duplicate_event",
    "duplicate_review_id": "duplicate_review_id",
    "null_user_id": "missing_user_id",
    "null_product_id": "missing_product_id",
    "null_title": "missing_title",
    "empty_body": "missing_body",
    "zero_quantity": "zero_quantity",
    "absurd_quantity": "absurd_quantity",
    "negative_price": "non_positive_price",
    "absurd_price": "absurd_price",
    "unknown_product": "unknown_product",
    "future_timestamp": "future_timestamp",
    "unparsable_timestamp": "bad_timestamp",
    "bad_quantity_type": "bad_quantity",
    "bad_event_type": "bad_event_type",
    "bad_attributes": "bad_attributes",
    "rating_out_of_range": "bad_rating",
    "bad_rating_type": "bad_rating",
}
PRICE_TYPE_REASON = {"orders": "bad_unit_price", "products": "bad_price"}


def expected_quarantine(dirt: dict[str, dict[str, int]]) -> dict[tuple[str, str], int]:
    expected: dict[tuple[str, str], int] = {}
    for entity, kinds in dirt.items():
        for kind, rows in kinds.items():
            if not rows:
                continue
            reason = PRICE_TYPE_REASON[entity] if kind == "bad_price_type" else EXPECTED_REASON[kind]
            if entity == "products" and kind == "duplicate_row":
                reason = "duplicate_product_row"
            expected[(entity, reason)] = expected.get((entity, reason), 0) + rows
    return expected


def published_fingerprints(settings: Settings) -> dict:
    with duckdb.connect(str(settings.analytics_path), read_only=True) as con:
        return table_fingerprints(con, ("marts", "quarantine"))


def raw_row_count(settings: Settings) -> int:
    with connect(settings, read_only=True) as con:
        return sum(
            con.execute(f"select count(*) from raw.{e}").fetchall()[0][0]
            for e in ("orders", "clicks", "products", "reviews")
        )


@pytest.mark.slow
def test_nightly_publishes_balanced_marts_and_a_rerun_changes_nothing(settings: Settings, monkeypatch) -> None:
    demo = generate_demo_shop(TINY_SHOP, settings.landing_dir)

    summary = nightly(run_date=date(2026, 3, 3))

    assert summary["run_date"] == "2026-03-03"
    assert all(entity["is_balanced"] for entity in summary["row_accounting"])
    assert {e["entity"] for e in summary["row_accounting"]} == {"orders", "clicks", "products", "reviews"}
    first = published_fingerprints(settings)
    assert first["marts.fct_interactions"]["rows"] > 0 and first["marts.dim_products"]["rows"] > 0
    assert (settings.reports_dir / "2026-03-03" / "nightly.json").exists()
    quarantined = {
        (entity["entity"], reason): rows
        for entity in summary["row_accounting"]
        for reason, rows in entity["quarantined_by_reason"].items()
    }
    assert quarantined == expected_quarantine(demo.dirt)  # every injected defect, and nothing else
    assert summary["audit"]["passed"] and summary["audit"]["expectations"] > 50
    assert "3 day(s) of events" in summary["recommender"]["skipped"]  # a young shop publishes without models
    report = Path(summary["report"]).read_text()
    assert "No recommender ran for this night: 3 day(s) of events" in report
    described, moderated = summary["descriptions"], summary["moderation"]
    assert described["generated"] == 6 and described["llm"] + described["template"] == 6  # the test budget
    assert moderated["scored"] == moderated["texts"] > 0  # every review and description, on the first night
    assert f"{described['generated']} generated tonight" in report and f"{moderated['flagged']} flagged" in report
    assert first["marts.product_descriptions"]["rows"] == 6
    assert first["marts.moderation_scores"]["rows"] == moderated["texts"]
    with duckdb.connect(str(settings.analytics_path), read_only=True) as con:
        audited = con.execute("select count(*) from audit.validation_results where run_date = '2026-03-03'").fetchone()
    assert audited[0] == summary["audit"]["expectations"]  # analysts read tonight's audit from the snapshot
    raw_rows = raw_row_count(settings)

    again = nightly(run_date=date(2026, 3, 3))

    assert again["unchanged"] and again["fingerprint"] == summary["fingerprint"]  # nothing rebuilt
    assert raw_row_count(settings) == raw_rows and published_fingerprints(settings) == first

    monkeypatch.setenv("SHOPFLOW_DESCRIPTION_BUDGET", "7")  # a changed setting is a changed night
    changed = nightly(run_date=date(2026, 3, 3))

    assert "unchanged" not in changed and changed["ingest"]["loaded"] == [] and raw_row_count(settings) == raw_rows
    assert changed["descriptions"]["generated"] == 1  # the night's budget grew by one; the rest is identical
    rebuilt = published_fingerprints(settings)
    untouched = {name for name in first if not name.startswith(("marts.product_description", "marts.moderation"))}
    assert {name: rebuilt[name] for name in untouched} == {name: first[name] for name in untouched}


@pytest.mark.slow
def test_a_refused_delivery_fails_the_night_before_dbt_and_keeps_the_snapshot(settings: Settings) -> None:
    generate_demo_shop(TINY_SHOP, settings.landing_dir)
    nightly(run_date=date(2026, 3, 2))
    snapshot = settings.analytics_path.read_bytes()
    (settings.landing_dir / "orders" / "2026-03-03.csv").write_text("order_id,user_id\nO1,U1\n")

    state = nightly(run_date=date(2026, 3, 3), return_state=True)

    assert state.is_failed()
    assert "orders/2026-03-03.csv" in state.message and "missing required column" in state.message
    assert settings.analytics_path.read_bytes() == snapshot


@pytest.mark.slow
def test_an_audit_error_fails_the_night_and_leaves_the_snapshot_byte_identical(settings: Settings) -> None:
    generate_demo_shop(TINY_SHOP, settings.landing_dir)
    nightly(run_date=date(2026, 3, 2))
    snapshot = settings.analytics_path.read_bytes()
    orders = settings.landing_dir / "orders" / "2026-03-03.csv"
    lines = pd.read_csv(orders, dtype=str, keep_default_na=False)
    copies = -(-2 * MIN_ROWS_FOR_ERRORS // len(lines))  # enough rows for an error-level share rule
    renamed = pd.concat([lines] * copies, ignore_index=True)
    renamed["order_id"] = [f"X{i}" for i in range(len(renamed))]
    renamed["ordered_at"] = "03/03/2026 10:15"  # the shop system switched date formats: every row unparsable
    renamed.to_csv(orders, index=False)

    state = nightly(run_date=date(2026, 3, 3), return_state=True)

    assert state.is_failed()
    assert "audit of the night 2026-03-03 failed" in state.message
    assert "orders" in state.message and "ordered_at" in state.message and "03/03/2026 10:15" in state.message
    assert settings.analytics_path.read_bytes() == snapshot


def test_a_served_run_loading_the_flow_file_by_path_gets_the_runtime_defaults(tmp_path) -> None:
    code = (
        "import os\n"
        "from prefect.flows import load_flow_from_entrypoint\n"
        f"load_flow_from_entrypoint({str(Path(nightly.fn.__code__.co_filename))!r} + ':nightly')\n"
        "print(os.environ.get('OMP_WAIT_POLICY'))\n"
    )
    environment = {key: value for key, value in os.environ.items() if key != "OMP_WAIT_POLICY"}
    environment |= {"SHOPFLOW_HOME": str(tmp_path), "PREFECT_HOME": str(tmp_path / "prefect")}
    result = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == "PASSIVE"  # configure_runtime ran: the package's __init__ did not


def test_task_bodies_run_without_the_engine(settings: Settings, write_landing) -> None:
    write_landing("products", "2026-01-01", [{"product_id": "P1", "title": "Lamp"}])
    loaded = ingest_task.fn(settings, date(2026, 1, 1))
    assert [f["file"] for f in loaded["loaded"]] == ["products/2026-01-01.csv"]
    write_landing("orders", "2026-01-01", [{"order_id": "O1"}])
    with pytest.raises(IngestError, match="missing required column"):
        ingest_task.fn(settings, date(2026, 1, 1))
    assert dbt_build_task.fn is not None


@task(name="probe-shard", cache_policy=NO_CACHE)
def probe_shard_task(settings: Settings, texts: list[str], suffix: str) -> tuple[int, bool, list[str]]:
    """Where it ran (thread id), whether as a Prefect task run, and its work on the shard."""
    return threading.get_ident(), TaskRunContext.get() is not None, [text + suffix for text in texts]


def test_the_local_runner_runs_a_shard_task_in_the_flows_own_thread(settings: Settings) -> None:
    @flow(task_runner=ThreadPoolTaskRunner())
    def fan_out() -> tuple[int, list]:
        return threading.get_ident(), run_shard_tasks(settings, probe_shard_task, "texts", [["a", "b"]], suffix="!")

    flow_thread, [(shard_thread, as_task_run, texts)] = fan_out()
    assert shard_thread == flow_thread and as_task_run and texts == ["a!", "b!"]
