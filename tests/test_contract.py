from datetime import date
from pathlib import Path

import pytest

from shopflow.contract import (
    ENTITIES,
    ContractError,
    landing_path,
    latest_landing_day,
    normalize_column,
    parse_landing_path,
    scan_landing,
)


@pytest.mark.parametrize(
    ("name", "file_format"),
    [("2026-01-31.csv", "csv"), ("2026-01-31.csv.gz", "csv"), ("2026-01-31.parquet", "parquet")],
)
def test_landing_file_names_identify_entity_day_and_format(name: str, file_format: str) -> None:
    landing = parse_landing_path(Path("landing/orders") / name)
    assert (landing.entity.name, landing.day, landing.file_format) == (
        "orders",
        date(2026, 1, 31),
        file_format,
    )


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("landing/invoices/2026-01-01.csv", "unknown entity folder 'invoices'"),
        ("landing/orders/orders-2026-01-01.csv", "file name must be"),
        ("landing/orders/2026-01-01.json", "file name must be"),
        ("landing/orders/2026-02-30.csv", "not a calendar date"),
    ],
)
def test_misnamed_landing_files_are_refused_with_the_reason(path: str, message: str) -> None:
    with pytest.raises(ContractError, match=message):
        parse_landing_path(Path(path))


def test_required_columns_are_matched_after_trimming_case_and_bom() -> None:
    header = ["\ufeffORDER_ID", " user_id ", "product_id", "Quantity", "unit_price"]
    assert ENTITIES["orders"].missing_required(header) == ["ordered_at"]
    assert normalize_column("\ufeff Product_ID ") == "product_id"


def test_every_entity_requires_its_keys() -> None:
    assert {name: entity.required[0] for name, entity in ENTITIES.items()} == {
        "orders": "order_id",
        "clicks": "user_id",
        "products": "product_id",
        "reviews": "review_id",
    }


def test_scan_sorts_by_day_and_reports_misplaced_files(tmp_path: Path) -> None:
    for entity, day in [("orders", "2026-01-02"), ("products", "2026-01-01"), ("orders", "2026-01-01")]:
        path = landing_path(tmp_path, entity, date.fromisoformat(day))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x\n")
    (tmp_path / "orders" / "notes.txt").write_text("hello")
    files, errors = scan_landing(tmp_path)
    assert [(f.day.isoformat(), f.entity.name) for f in files] == [
        ("2026-01-01", "orders"),
        ("2026-01-01", "products"),
        ("2026-01-02", "orders"),
    ]
    assert len(errors) == 1 and "notes.txt" in str(errors[0])
    assert latest_landing_day(tmp_path) == date(2026, 1, 2)


def test_latest_landing_day_needs_files(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match="no landing files"):
        latest_landing_day(tmp_path)
