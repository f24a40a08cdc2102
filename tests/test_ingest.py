import gzip
import json
from datetime import date, datetime

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shopflow.contract import landing_path
from shopflow.ingest import IngestError, ingest_landing
from shopflow.settings import Settings

ORDER = {
    "order_id": "O1",
    "line_no": "1",
    "user_id": "U1",
    "product_id": "P1",
    "quantity": "2",
    "unit_price": "9.50",
    "ordered_at": "2026-01-01 10:00:00",
}


def raw_rows(settings: Settings, entity: str = "orders") -> list[dict]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        frame = con.execute(f"select * from raw.{entity} order by _load_id, _row_number").df()
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def loads(settings: Settings) -> list[tuple]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.execute(
            "select entity, delivery_date::varchar, version, rows from audit.loads order by load_id"
        ).fetchall()


def test_loads_every_contract_column_as_text_with_lineage(settings, write_landing) -> None:
    write_landing("orders", "2026-01-01", [ORDER, ORDER | {"order_id": "O2", "quantity": "two"}])
    report = ingest_landing(settings)
    assert [(f.file, f.rows, f.version) for f in report.loaded] == [("orders/2026-01-01.csv", 2, 1)]
    second = raw_rows(settings)[1]
    assert {k: second[k] for k in ORDER} == ORDER | {
        "order_id": "O2",
        "quantity": "two",
    }  # garbage kept as text
    assert (second["_row_number"], second["_source_file"], second["_extra"]) == (
        2,
        "orders/2026-01-01.csv",
        None,
    )
    assert loads(settings) == [("orders", "2026-01-01", 1, 2)]


def test_re_ingesting_the_same_file_is_a_no_op(settings, write_landing) -> None:
    write_landing("orders", "2026-01-01", [ORDER])
    ingest_landing(settings)
    second = ingest_landing(settings)
    assert second.loaded == [] and second.unchanged == ["orders/2026-01-01.csv"]
    assert len(raw_rows(settings)) == 1


def test_a_changed_file_for_a_loaded_day_is_refused_and_raw_untouched(settings, write_landing) -> None:
    write_landing("orders", "2026-01-01", [ORDER])
    ingest_landing(settings)
    write_landing("orders", "2026-01-01", [ORDER | {"quantity": "3"}])
    report = ingest_landing(settings)
    assert len(report.refused) == 1 and "already loaded" in report.refused[0].reason
    assert "--redeliver" in report.refused[0].reason
    with pytest.raises(IngestError, match="orders/2026-01-01.csv"):
        report.raise_for_refusals()
    assert [r["quantity"] for r in raw_rows(settings)] == ["2"]
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        assert con.execute("select source_file from audit.refusals").fetchall() == [("orders/2026-01-01.csv",)]


def test_redeliver_loads_a_changed_day_as_the_next_version(settings, write_landing) -> None:
    write_landing("orders", "2026-01-01", [ORDER])
    ingest_landing(settings)
    write_landing("orders", "2026-01-01", [ORDER | {"quantity": "3"}])
    report = ingest_landing(settings, redeliver=True)
    assert [(f.version, f.rows) for f in report.loaded] == [(2, 1)]
    assert [r["quantity"] for r in raw_rows(settings)] == [
        "2",
        "3",
    ]  # both versions kept; staging reads the newest


def test_unknown_columns_are_kept_in_extra_and_order_does_not_matter(settings, write_landing) -> None:
    columns = ["ordered_at", "unit_price", "Quantity", "product_id", "user_id", "order_id", "gift_wrap"]
    write_landing(
        "orders",
        "2026-01-01",
        [{k.lower(): v for k, v in ORDER.items()} | {"gift_wrap": "yes", "Quantity": "2"}],
        columns,
    )
    ingest_landing(settings).raise_for_refusals()
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        quantity, extra, line_no = con.execute("select quantity, _extra, line_no from raw.orders").fetchall()[0]
    assert quantity == "2" and json.loads(extra) == {"gift_wrap": "yes"} and line_no is None


def test_bom_crlf_and_gzip_are_read(settings) -> None:
    header = ",".join(ORDER)
    body = "\ufeff" + header + "\r\n" + ",".join(ORDER.values()) + "\r\n"
    path = landing_path(settings.landing_dir, "orders", date(2026, 1, 1), ".csv.gz")
    path.parent.mkdir(parents=True)
    path.write_bytes(gzip.compress(body.encode("utf-8")))
    ingest_landing(settings).raise_for_refusals()
    assert {k: raw_rows(settings)[0][k] for k in ORDER} == ORDER


def test_typed_parquet_values_land_as_text(settings) -> None:
    table = pa.table(
        {
            "order_id": ["O1"],
            "user_id": ["U1"],
            "product_id": ["P1"],
            "quantity": pa.array([2], pa.int64()),
            "unit_price": pa.array([9.5], pa.float64()),
            "ordered_at": pa.array([datetime(2026, 1, 1, 10)], pa.timestamp("us")),
        }
    )
    path = landing_path(settings.landing_dir, "orders", date(2026, 1, 1), ".parquet")
    path.parent.mkdir(parents=True)
    pq.write_table(table, path)
    ingest_landing(settings).raise_for_refusals()
    row = raw_rows(settings)[0]
    assert (row["quantity"], row["unit_price"], row["ordered_at"]) == ("2", "9.5", "2026-01-01 10:00:00")


def test_header_only_file_loads_zero_rows(settings, write_landing) -> None:
    write_landing("orders", "2026-01-01", [], columns=list(ORDER))
    report = ingest_landing(settings)
    assert [(f.rows, f.version) for f in report.loaded] == [(0, 1)] and not report.refused


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty file"),
        (
            b"order_id,user_id,product_id,quantity,unit_price\nO1,U1,P1,2,9.5\n",
            "missing required column(s) ordered_at",
        ),
        (
            b"order_id,user_id,product_id,quantity,unit_price,ordered_at\nO1,U1,P1,2,9.5,2026-01-01,extra\n",
            "",
        ),
        (
            b"order_id,user_id,product_id,quantity,unit_price,ordered_at\nO1,U\xff\xfe1,P1,2,9.5,2026-01-01\n",
            "",
        ),
        (b"order_id,order_id,user_id,product_id,quantity,unit_price,ordered_at\n", "appears twice"),
    ],
    ids=["empty", "missing-column", "ragged-row", "not-utf8", "duplicate-header"],
)
def test_unreadable_or_contract_breaking_files_are_refused_and_nothing_loaded(
    settings, write_landing, content, reason
) -> None:
    write_landing("orders", "2026-01-01", [ORDER])
    ingest_landing(settings)
    bad = landing_path(settings.landing_dir, "orders", date(2026, 1, 2))
    bad.write_bytes(content)
    report = ingest_landing(settings)
    assert [r.file for r in report.refused] == ["orders/2026-01-02.csv"]
    assert reason in report.refused[0].reason and report.refused[0].reason
    assert len(raw_rows(settings)) == 1 and len(loads(settings)) == 1


def test_truncated_gzip_is_refused(settings) -> None:
    path = landing_path(settings.landing_dir, "orders", date(2026, 1, 1), ".csv.gz")
    path.parent.mkdir(parents=True)
    text = ",".join(ORDER) + "\n" + (",".join(ORDER.values()) + "\n") * 500
    path.write_bytes(gzip.compress(text.encode())[:-40])
    report = ingest_landing(settings)
    assert [r.file for r in report.refused] == ["orders/2026-01-01.csv.gz"]
    assert loads(settings) == []


def test_until_limits_ingest_to_days_up_to_the_run_date(settings, write_landing) -> None:
    write_landing("orders", "2026-01-01", [ORDER])
    write_landing("orders", "2026-01-02", [ORDER | {"order_id": "O2"}])
    report = ingest_landing(settings, until=date(2026, 1, 1))
    assert [f.file for f in report.loaded] == ["orders/2026-01-01.csv"]


def test_misplaced_files_are_refused_by_name(settings, write_landing) -> None:
    write_landing("orders", "2026-01-01", [ORDER])
    (settings.landing_dir / "orders" / "latest.csv").write_text("x\n")
    report = ingest_landing(settings)
    assert [r.file for r in report.refused] == [str(settings.landing_dir / "orders" / "latest.csv")]
    assert len(report.loaded) == 1
