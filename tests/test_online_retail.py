"""The UCI Online Retail adapter: a pure format mapping into the landing contract; dirt survives into raw.

The fixture (tests/fixtures/online_retail/by-day/) is three day files in the real format with the real
kinds of dirt: a cancellation, null CustomerIDs, POST/DOT/M/m/D/B codes, zero and negative prices ("Adjust
bad debt" -11062.06), null Descriptions, an exact duplicate line, descriptions with a comma and with quotes,
a 0.001 price and "17850.0"-style customer ids. The test copies it to a tmp folder and gzips the first
day, so both ``.csv.gz`` and ``.csv`` are read.
"""

from __future__ import annotations

import csv
import gzip
import json
import shutil
import time
from datetime import date
from pathlib import Path

import pytest

from shopflow.contract import ENTITIES, landing_path, parse_landing_path
from shopflow.online_retail import format_user_id, import_online_retail

FIXTURE = Path(__file__).parent / "fixtures" / "online_retail" / "by-day"
REAL = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "online-retail" / "by-day"
D1, D2, D3 = date(2010, 12, 1), date(2010, 12, 2), date(2011, 8, 12)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A dataset folder ``online-retail/by-day`` with day 1 gzipped and days 2-3 plain."""
    by_day = tmp_path / "online-retail" / "by-day"
    by_day.mkdir(parents=True)
    for path in sorted(FIXTURE.glob("*.csv")):
        if path.stem == D1.isoformat():
            (by_day / f"{path.name}.gz").write_bytes(gzip.compress(path.read_bytes(), mtime=0))
        else:
            shutil.copy(path, by_day / path.name)
    (by_day / "README.txt").write_text("not a day file\n")
    return by_day


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def source_rows(day: date) -> list[dict[str, str]]:
    return read_rows(FIXTURE / f"{day.isoformat()}.csv")


def products_by_day(landing: Path) -> dict[date, dict[str, dict[str, str]]]:
    return {
        day: {r["product_id"]: r for r in read_rows(landing_path(landing, "products", day))} for day in (D1, D2, D3)
    }


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------- orders


def test_writes_one_orders_and_one_products_file_per_day_in_the_contract_layout(source: Path, tmp_path: Path):
    landing = tmp_path / "landing"
    summary = import_online_retail(source, landing)

    assert summary.days == 3
    expected = [landing_path(landing, e, d) for d in (D1, D2, D3) for e in ("orders", "products")]
    assert summary.files == expected
    assert sorted(p for p in landing.rglob("*") if p.is_file()) == sorted(expected)
    for path in expected:
        parsed = parse_landing_path(path)  # well-named for the loader
        with open(path, encoding="utf-8", newline="") as fh:
            assert tuple(next(csv.reader(fh))) == parsed.entity.columns
        assert b"\r" not in path.read_bytes()
    assert summary.rows["orders"] == sum(len(source_rows(d)) for d in (D1, D2, D3)) == 24
    assert summary.rows["products"] == sum(len(read_rows(landing_path(landing, "products", d))) for d in (D1, D2, D3))
    assert json.loads(json.dumps(summary.to_dict()))["rows"] == summary.rows


def test_orders_map_row_for_row_in_source_order(source: Path, tmp_path: Path):
    landing = tmp_path / "landing"
    import_online_retail(source, landing)
    for day in (D1, D2, D3):
        src, out = source_rows(day), read_rows(landing_path(landing, "orders", day))
        assert len(out) == len(src)
        for s, o in zip(src, out, strict=True):
            assert o["order_id"] == s["InvoiceNo"]
            assert o["product_id"] == s["StockCode"]
            assert o["quantity"] == s["Quantity"]
            assert o["unit_price"] == s["UnitPrice"]
            assert o["ordered_at"] == s["InvoiceDate"]
            assert o["country"] == s["Country"]
            assert o["currency"] == "GBP"
            assert o["line_no"] == ""
            assert o["status"] == ("cancelled" if s["InvoiceNo"].startswith("C") else "placed")


def test_cancellations_user_ids_and_dirt_survive_verbatim(source: Path, tmp_path: Path):
    landing = tmp_path / "landing"
    import_online_retail(source, landing)
    d1 = read_rows(landing_path(landing, "orders", D1))
    d2 = read_rows(landing_path(landing, "orders", D2))
    d3 = read_rows(landing_path(landing, "orders", D3))

    cancel = next(r for r in d1 if r["order_id"] == "C536379")
    assert (cancel["status"], cancel["quantity"], cancel["product_id"], cancel["user_id"]) == (
        "cancelled",
        "-1",
        "D",
        "14527",
    )
    assert [r["status"] for r in d1].count("cancelled") == 2
    assert d1[0]["user_id"] == "17850"  # "17850.0" in the source
    assert [r["user_id"] for r in d1 if r["order_id"] == "536544"] == ["", ""]  # null customer stays empty

    # non-product codes kept as-is, case included
    assert {"POST", "DOT", "D"} <= {r["product_id"] for r in d1}
    assert [r["product_id"] for r in d2 if r["order_id"] == "536569"] == ["M", "m"]
    # negative quantity that is not a cancellation, zero price, null description: all still there
    assert [(r["status"], r["quantity"], r["unit_price"]) for r in d2 if r["product_id"] == "22139"] == [
        ("placed", "-10", "0.0")
    ]
    # bad-debt adjustments (both signs) and the 0.001 price, to the character
    assert [(r["order_id"], r["unit_price"], r["status"]) for r in d3 if r["product_id"] == "B"] == [
        ("A563185", "11062.06", "placed"),
        ("A563186", "-11062.06", "placed"),
    ]
    assert [r["unit_price"] for r in d3 if r["product_id"] == "PADS"] == ["0.001"]


def test_exact_duplicate_lines_stay_exact_duplicates(source: Path, tmp_path: Path):
    landing = tmp_path / "landing"
    import_online_retail(source, landing)
    lines = landing_path(landing, "orders", D1).read_text(encoding="utf-8").splitlines()
    dup = "536409,17908,90199C,1,6.35,2010-12-01 11:45:00,,GBP,placed,United Kingdom"
    assert lines.count(dup) == 2
    assert lines.index(dup) + 1 == lines.index(dup, lines.index(dup) + 1)  # adjacent, as in the source


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("17850.0", "17850"),
        ("12583.00", "12583"),
        ("17850", "17850"),
        ("", ""),
        ("12.5", "12.5"),  # not integral: passed through for cleaning to judge
        ("abc", "abc"),
        (" 17850.0", " 17850.0"),
    ],
)
def test_format_user_id(raw: str, expected: str):
    assert format_user_id(raw) == expected


# ---------------------------------------------------------------- products


def test_product_deltas_emit_new_and_changed_codes_only(source: Path, tmp_path: Path):
    landing = tmp_path / "landing"
    import_online_retail(source, landing)
    p = products_by_day(landing)

    # day 1: every code is new; ties broken deterministically (85123A: 2.55 and 5.91 once each → lowest)
    assert sorted(p[D1]) == sorted({r["StockCode"] for r in source_rows(D1)})
    heart = p[D1]["85123A"]
    assert (heart["title"], heart["price"], heart["currency"], heart["updated_at"]) == (
        "WHITE HANGING HEART T-LIGHT HOLDER",
        "2.55",
        "GBP",
        "2010-12-01 08:26:00",  # the day's first InvoiceDate for the code
    )
    assert all(heart[c] == "" for c in ("category", "brand", "attributes", "description"))
    assert list(p[D1]) == sorted(p[D1])  # rows sorted by product_id
    assert p[D1]["82567"]["title"] == "AIRLINE LOUNGE,METAL SIGN"
    assert p[D1]["22041"]["title"] == 'RECORD FRAME 7" SINGLE SIZE '  # quotes and trailing space kept

    # day 2: 85123A unchanged → not re-emitted; 71053 changed price → re-emitted; M and m are distinct codes;
    # 82567 and 22139 only have null descriptions today and no other change → not re-emitted
    assert sorted(p[D2]) == ["71053", "M", "m"]
    assert (p[D2]["71053"]["title"], p[D2]["71053"]["price"]) == ("WHITE METAL LANTERN", "3.75")
    assert (p[D2]["M"]["price"], p[D2]["m"]["price"]) == ("1.25", "2.5")

    # day 3: modal ties → alphabetical title / lowest price; the 0.001 price and the negative price survive
    assert (p[D3]["B"]["title"], p[D3]["B"]["price"]) == ("Adjust bad debt", "-11062.06")
    assert p[D3]["PADS"]["price"] == "0.001"
    assert (p[D3]["23084"]["title"], p[D3]["23084"]["price"]) == ("RABBIT NIGHT LIGHT", "0.0")
    assert p[D3]["23084"]["updated_at"] == "2011-08-12 10:11:00"


def test_code_with_only_null_descriptions_gets_an_empty_title_then_a_real_one(source: Path, tmp_path: Path):
    landing = tmp_path / "landing"
    import_online_retail(source, landing)
    p = products_by_day(landing)
    assert (p[D1]["22139"]["title"], p[D1]["22139"]["price"]) == ("", "0.0")  # dirt survives into raw
    assert "22139" not in p[D2]  # still null, same price: nothing new
    assert (p[D3]["22139"]["title"], p[D3]["22139"]["price"]) == ("RETROSPOT TEA SET CERAMIC 11 PC ", "4.95")


def test_modal_description_and_price_win(tmp_path: Path):
    by_day = tmp_path / "by-day"
    by_day.mkdir()
    header = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
    lines = [
        "1,X1,b title,1,2011-01-05 10:00:00,1.25,1.0,UK",
        "2,X1,a title,1,2011-01-05 09:00:00,2.5,1.0,UK",
        "3,X1,b title,1,2011-01-05 11:00:00,1.25,1.0,UK",
        "4,X1,,1,2011-01-05 12:00:00,9.99,1.0,UK",
    ]
    (by_day / "2011-01-05.csv").write_text(header + "\n".join(lines) + "\n")
    import_online_retail(by_day, tmp_path / "landing")
    [row] = read_rows(landing_path(tmp_path / "landing", "products", date(2011, 1, 5)))
    assert (row["title"], row["price"], row["updated_at"]) == ("b title", "1.25", "2011-01-05 09:00:00")


# ---------------------------------------------------------------- days, determinism, errors


def test_selected_days_carry_the_state_of_earlier_days(source: Path, tmp_path: Path):
    full, partial = tmp_path / "full", tmp_path / "partial"
    import_online_retail(source, full)
    summary = import_online_retail(source, partial, days=[D2, date(2010, 12, 4)])  # a Saturday: no file

    assert summary.days == 1
    assert summary.files == [landing_path(partial, "orders", D2), landing_path(partial, "products", D2)]
    assert summary.skipped_days == [date(2010, 12, 4)]
    assert summary.to_dict()["skipped_days"] == ["2010-12-04"]
    for path in summary.files:  # identical to the full import's day, product delta included
        assert path.read_bytes() == (full / path.relative_to(partial)).read_bytes()
    assert not landing_path(partial, "orders", D1).exists()


def test_rerun_writes_identical_bytes(source: Path, tmp_path: Path):
    a, b = tmp_path / "a", tmp_path / "b"
    first = import_online_retail(source, a)
    before = snapshot(a)
    import_online_retail(source, a)  # overwrite in place
    import_online_retail(source.parent, b)  # the dataset folder is accepted too
    assert snapshot(a) == before
    assert snapshot(b) == before
    assert first.rows == import_online_retail(source, a).rows


def test_missing_or_empty_source_folder_is_a_clear_error(tmp_path: Path):
    missing = tmp_path / "nope"
    with pytest.raises(FileNotFoundError, match="nope"):
        import_online_retail(missing, tmp_path / "landing")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.csv").write_text("x\n")
    with pytest.raises(FileNotFoundError, match=r"no YYYY-MM-DD\.csv.*empty"):
        import_online_retail(empty, tmp_path / "landing")
    assert not (tmp_path / "landing").exists()


def test_bad_header_and_double_delivery_are_errors(tmp_path: Path):
    by_day = tmp_path / "by-day"
    by_day.mkdir()
    (by_day / "2011-01-05.csv").write_text("InvoiceNo,StockCode\n1,X\n")
    with pytest.raises(ValueError, match=r"2011-01-05\.csv.*Description"):
        import_online_retail(by_day, tmp_path / "landing")
    (by_day / "2011-01-05.csv.gz").write_bytes(gzip.compress(b"InvoiceNo\n", mtime=0))
    with pytest.raises(ValueError, match="delivered twice"):
        import_online_retail(by_day, tmp_path / "landing")


# ---------------------------------------------------------------- the real dataset


@pytest.mark.slow
@pytest.mark.skipif(not REAL.is_dir(), reason=f"real Online Retail data not present at {REAL}")
def test_full_real_dataset(tmp_path: Path):
    started = time.perf_counter()
    summary = import_online_retail(REAL, tmp_path / "landing")
    elapsed = time.perf_counter() - started

    orders = sorted((tmp_path / "landing" / "orders").glob("*.csv"))
    assert len(orders) == summary.days == 305
    assert summary.rows["orders"] == 541_909
    total = 0
    for path in orders:
        with open(path, encoding="utf-8", newline="") as fh:
            reader = csv.reader(fh)
            assert tuple(next(reader)) == ENTITIES["orders"].columns
            total += sum(1 for _ in reader)
    assert total == 541_909
    assert len(list((tmp_path / "landing" / "products").glob("*.csv"))) == 305
    assert elapsed < 60, f"import took {elapsed:.1f}s"
