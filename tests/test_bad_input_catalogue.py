"""The bad-input catalogue: every kind of bad delivery ends as a quarantined row with the right reason, a clean row
kept verbatim, a refusal that loses nothing, or an audit finding of the right severity.

Row-level cases share one landing tree (one ingest, one ``dbt build``); each case's rows carry the case name in a
tag column so the test finds them. Nights after the dirty night test volume and completeness through the audit.
File-level refusals only need ingest.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from shopflow.contract import landing_path
from shopflow.expectations.audit import AuditReport, audit_night
from shopflow.ingest import ingest_landing
from shopflow.settings import Settings
from shopflow.transform import build_warehouse

FIRST_DAY = date(2026, 3, 1)
DIRTY_NIGHT = date(2026, 3, 8)  # every row-level case is delivered on this day
SPIKE_NIGHT, DROP_NIGHT, EMPTY_NIGHT = date(2026, 3, 9), date(2026, 3, 10), date(2026, 3, 11)
REDELIVERED_DAY = date(2026, 3, 3)
LONG_TEXT = "x" * 20_001  # max_text_length is 20,000
SQL_IN_ORDER_ID = "O'; DROP TABLE raw.orders; --"
SQL_IN_TITLE = 'Robert\'); DROP TABLE students;-- "Bobby" Tables'

#: The column each entity's cases are tagged in (with the case name), and where its clean rows end up.
TAG_COLUMN = {"orders": "country", "clicks": "session_id", "products": "brand", "reviews": "title"}
CLEAN_TABLE = {
    "orders": "marts.fct_order_lines",
    "clicks": "marts.fct_clicks",
    "products": "marts.dim_products",
    "reviews": "marts.fct_reviews",
}


def clean_row(entity: str, day: date, name: str) -> dict:
    """A clean row of ``entity`` delivered on ``day``, its id and tag derived from ``name``."""
    at = f"{day} 12:00:00"
    return {
        "orders": {
            "order_id": f"O-{name}",
            "line_no": "1",
            "user_id": "U1",
            "product_id": "P01",
            "quantity": "1",
            "unit_price": "9.50",
            "ordered_at": at,
            "currency": "EUR",
            "status": "placed",
            "country": name,
        },
        "clicks": {
            "event_id": f"E-{name}",
            "session_id": name,
            "user_id": "U1",
            "product_id": "P01",
            "event_type": "view",
            "occurred_at": at,
        },
        "products": {
            "product_id": f"P-{name}",
            "title": "Desk lamp",
            "category": "lighting",
            "brand": name,
            "price": "19.90",
            "currency": "EUR",
            "attributes": '{"color": "red"}',
            "description": "A lamp.",
            "updated_at": at,
        },
        "reviews": {
            "review_id": f"R-{name}",
            "product_id": "P01",
            "user_id": "U1",
            "rating": "4",
            "title": name,
            "body": "Bright enough.",
            "created_at": at,
        },
    }[entity]


@dataclass(frozen=True)
class RowCase:
    """A delivered row with one defect (``changes`` to a clean row) and its expected fate."""

    name: str
    entity: str
    changes: dict = field(default_factory=dict)
    quarantined_as: tuple[str, ...] = ()  # reasons of the case's quarantined rows
    clean_rows: int = 0  # the case's rows that reach the marts
    copies: int = 1  # times the row is delivered on the dirty night

    def rows(self) -> list[dict]:
        return [clean_row(self.entity, DIRTY_NIGHT, self.name) | self.changes] * self.copies


#: Delivered on day 7, then again on the dirty night.
DUPLICATE_ACROSS_DAYS = RowCase(
    "duplicate_across_days", "orders", {"ordered_at": "2026-03-07 12:00:00"}, ("duplicate_row",), clean_rows=1
)
ROW_CASES = [
    # orders: type garbage, ranges, timestamps, keys, duplicates, references, SQL text
    RowCase("garbage_quantity", "orders", {"quantity": "two"}, ("bad_quantity",)),
    RowCase("garbage_price", "orders", {"unit_price": "12,50 EUR"}, ("bad_unit_price",)),
    RowCase("garbage_timestamp", "orders", {"ordered_at": "31/02/2026 25:61"}, ("bad_timestamp",)),
    RowCase("future_timestamp", "orders", {"ordered_at": "2027-03-08 12:00:00"}, ("future_timestamp",)),
    RowCase("before_shop_opened", "orders", {"ordered_at": "1999-12-31 23:59:59"}, ("before_shop_opened",)),
    RowCase("negative_quantity_is_a_return", "orders", {"quantity": "-1", "status": "returned"}, clean_rows=1),
    RowCase("zero_quantity", "orders", {"quantity": "0"}, ("zero_quantity",)),
    RowCase("absurd_quantity", "orders", {"quantity": "250000"}, ("absurd_quantity",)),
    RowCase("negative_price", "orders", {"unit_price": "-9.50"}, ("non_positive_price",)),
    RowCase("absurd_price", "orders", {"unit_price": "9999999.00"}, ("absurd_price",)),
    RowCase("unknown_product", "orders", {"product_id": "PX404"}, ("unknown_product",)),
    RowCase("postage_line", "orders", {"product_id": "POST"}, ("non_product_item",)),
    RowCase("null_order_id", "orders", {"order_id": ""}, ("missing_order_id",)),
    RowCase("null_product_id", "orders", {"product_id": " "}, ("missing_product_id",)),
    RowCase("null_user_id", "orders", {"user_id": ""}, ("missing_user_id",)),
    RowCase("duplicate_within_file", "orders", quarantined_as=("duplicate_row",), clean_rows=1, copies=2),
    DUPLICATE_ACROSS_DAYS,
    RowCase("sql_metacharacters_and_quotes", "orders", {"order_id": SQL_IN_ORDER_ID, "user_id": 'U"1'}, clean_rows=1),
    RowCase("wrong_column_order", "orders", {"quantity": "3", "unit_price": "7.25"}, clean_rows=1),
    RowCase("extra_unknown_column", "orders", {"gift_wrap": "yes"}, clean_rows=1),
    # clicks (the dirty night's file has a BOM and CRLF line ends)
    RowCase("bom_and_crlf", "clicks", clean_rows=1),
    RowCase("unknown_event_type", "clicks", {"event_type": "hover"}, ("bad_event_type",)),
    RowCase("garbage_click_timestamp", "clicks", {"occurred_at": "not a time"}, ("bad_timestamp",)),
    RowCase("repeated_event_id", "clicks", quarantined_as=("duplicate_event",), clean_rows=1, copies=2),
    RowCase("click_on_unknown_product", "clicks", {"product_id": "PX404"}, ("unknown_product",)),
    # products
    RowCase("attributes_json_array", "products", {"attributes": "[1, 2]"}, ("bad_attributes",)),
    RowCase("attributes_broken_json", "products", {"attributes": "{broken"}, ("bad_attributes",)),
    RowCase("very_long_description", "products", {"description": LONG_TEXT}, ("text_too_long",)),
    RowCase("null_title", "products", {"title": ""}, ("missing_title",)),
    RowCase("sql_in_title", "products", {"title": SQL_IN_TITLE}, clean_rows=1),
    # reviews
    RowCase("very_long_review", "reviews", {"body": LONG_TEXT}, ("text_too_long",)),
    RowCase("null_review_id", "reviews", {"review_id": ""}, ("missing_review_id",)),
    RowCase("rating_out_of_range", "reviews", {"rating": "7"}, ("bad_rating",)),
    RowCase("review_of_unknown_product", "reviews", {"product_id": "PX404"}, ("unknown_product",)),
    RowCase("review_by_unknown_user", "reviews", {"user_id": "U-ghost"}, clean_rows=1),  # and the audit warns
]
#: Delivered on day 3, whose file is then delivered again without it (``--redeliver``).
SUPERSEDED = RowCase(
    "superseded_by_redelivery", "orders", {"ordered_at": "2026-03-03 12:00:00"}, ("superseded_delivery",)
)


def usual_orders(day: date, rows: int = 20) -> list[dict]:
    return [
        clean_row("orders", day, f"usual-{n}") | {"order_id": f"O{day}-{n}", "ordered_at": f"{day} 10:00:00"}
        for n in range(rows)
    ]


def deliver(
    landing: Path,
    entity: str,
    day: date,
    rows: list[dict],
    columns: list[str] | None = None,
    line_end: str = "\n",
    bom: bool = False,
) -> Path:
    """Write one delivery as CSV (columns default to the first row's keys, in that order)."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns or list(rows[0]), lineterminator=line_end, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    path = landing_path(landing, entity, day)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(("\ufeff" if bom else "") + text.getvalue(), encoding="utf-8", newline="")
    return path


def cases_of(entity: str) -> list[dict]:
    return [row for case in ROW_CASES if case.entity == entity for row in case.rows()]


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Eleven days of a small shop: orders every day (20 lines), the full catalogue on day 1, every row-level case
    on day 8, a 10× order spike on day 9, a 90% drop on day 10 and a header-only orders file on day 11 (when the
    reviews delivered on day 8 are missing). Day 3 is redelivered. Built once, for day 11."""
    settings = Settings(home=tmp_path_factory.mktemp("catalogue"))
    landing = settings.landing_dir
    earlier_copies = {REDELIVERED_DAY: SUPERSEDED.rows(), DIRTY_NIGHT - timedelta(days=1): DUPLICATE_ACROSS_DAYS.rows()}
    for offset in range(7):
        day = FIRST_DAY + timedelta(days=offset)
        deliver(landing, "orders", day, usual_orders(day) + earlier_copies.get(day, []))
    catalogue_rows = [clean_row("products", FIRST_DAY, "usual") | {"product_id": f"P{n:02d}"} for n in range(10)]
    deliver(landing, "products", FIRST_DAY, catalogue_rows)

    dirty_orders = usual_orders(DIRTY_NIGHT) + cases_of("orders")
    shuffled = ["unit_price", "ordered_at", "quantity", "gift_wrap", "product_id", "order_id", "user_id"]
    deliver(
        landing, "orders", DIRTY_NIGHT, dirty_orders, columns=shuffled + ["line_no", "currency", "status", "country"]
    )
    deliver(landing, "clicks", DIRTY_NIGHT, cases_of("clicks"), line_end="\r\n", bom=True)
    deliver(landing, "products", DIRTY_NIGHT, cases_of("products"))
    deliver(landing, "reviews", DIRTY_NIGHT, cases_of("reviews"))
    deliver(landing, "orders", SPIKE_NIGHT, usual_orders(SPIKE_NIGHT, 200))
    deliver(landing, "orders", DROP_NIGHT, usual_orders(DROP_NIGHT, 2))
    deliver(landing, "orders", EMPTY_NIGHT, [], columns=list(clean_row("orders", EMPTY_NIGHT, "")))
    ingest_landing(settings).raise_for_refusals()

    deliver(landing, "orders", REDELIVERED_DAY, usual_orders(REDELIVERED_DAY))  # the day again, without the case
    assert [f.version for f in ingest_landing(settings, redeliver=True).loaded] == [2]
    build_warehouse(settings, EMPTY_NIGHT)
    return settings


def query(settings: Settings, sql: str, *parameters: object) -> list[tuple]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.execute(sql, list(parameters)).fetchall()


@pytest.mark.parametrize("case", [*ROW_CASES, SUPERSEDED], ids=lambda case: case.name)
def test_every_bad_row_is_quarantined_with_its_reason_and_good_rows_are_kept(catalogue: Settings, case) -> None:
    tag = TAG_COLUMN[case.entity]
    reasons = query(
        catalogue,
        f"select quarantine_reason from quarantine.quarantine_{case.entity} "
        f"where json_extract_string(raw_record, '$.{tag}') = ? order by 1",
        case.name,
    )
    (clean,) = query(catalogue, f"select count(*) from {CLEAN_TABLE[case.entity]} where {tag} = ?", case.name)[0]
    assert (tuple(reason for (reason,) in reasons), clean) == (case.quarantined_as, case.clean_rows)


def test_text_with_sql_metacharacters_and_quotes_is_kept_verbatim(catalogue: Settings) -> None:
    assert query(
        catalogue,
        "select order_id, user_id from marts.fct_order_lines where country = ?",
        "sql_metacharacters_and_quotes",
    ) == [(SQL_IN_ORDER_ID, 'U"1')]
    assert query(catalogue, "select title from marts.dim_products where brand = 'sql_in_title'") == [(SQL_IN_TITLE,)]
    assert query(catalogue, "select count(*) from raw.orders")[0][0] > 0  # nothing was executed


def test_columns_are_matched_by_name_and_unknown_ones_kept_in_raw(catalogue: Settings) -> None:
    assert query(
        catalogue,
        "select quantity, unit_price::double from marts.fct_order_lines where country = ?",
        "wrong_column_order",
    ) == [(3, 7.25)]
    (extra,) = query(catalogue, "select _extra from raw.orders where country = 'extra_unknown_column'")[0]
    assert json.loads(extra) == {"gift_wrap": "yes"}


def test_raw_equals_clean_plus_quarantined_after_every_kind_of_dirt(catalogue: Settings) -> None:
    assert query(catalogue, "select entity from quarantine.row_accounting where not is_balanced") == []


# ---------------------------------------------------------------- the audit: volume, completeness, distribution


@pytest.fixture(scope="module")
def audits(catalogue: Settings) -> dict[date, AuditReport]:
    return {night: audit_night(catalogue, night) for night in (DIRTY_NIGHT, SPIKE_NIGHT, DROP_NIGHT, EMPTY_NIGHT)}


def warned(report: AuditReport, suite: str, column: str) -> list:
    """The unexpected examples of the failed warn-level expectation of ``suite`` on ``column``."""
    (warning,) = [o for o in report.warnings if o.suite == suite and o.column == column]
    return warning.unexpected_examples


def test_a_dirty_night_with_every_kind_of_row_level_dirt_only_warns(audits) -> None:
    report = audits[DIRTY_NIGHT]
    assert report.errors == [] and len(report.warnings) > 10
    assert {"_extra": '{"gift_wrap":null}', "_row_number": 1} in warned(report, "raw.orders", "_extra")


def test_a_review_by_an_unknown_user_warns(audits) -> None:
    assert warned(audits[DIRTY_NIGHT], "raw.reviews", "user_id") == [{"user_id": "U-ghost", "_row_number": 5}]


@pytest.mark.parametrize(
    ("night", "rows"),
    [(SPIKE_NIGHT, 200), (DROP_NIGHT, 2), (EMPTY_NIGHT, 0)],
    ids=["10x-volume-spike", "90-percent-volume-drop", "header-only-file"],
)
def test_a_volume_spike_or_drop_stops_the_night(audits, night, rows) -> None:
    (error,) = audits[night].errors
    assert (error.suite, error.expectation_type, error.observed_value) == (
        "raw.orders",
        "expect_table_row_count_to_be_between",
        rows,
    )
    assert "median 20 of the last 7 deliveries" in error.description


def test_a_header_only_file_is_loaded_as_zero_rows(catalogue: Settings) -> None:
    assert query(
        catalogue, "select rows from audit.loads where entity = 'orders' and delivery_date = ?", EMPTY_NIGHT
    ) == [(0,)]


def test_an_entity_missing_for_a_day_warns(audits) -> None:
    missing = warned(audits[EMPTY_NIGHT], "audit.loads", "rows_delivered")
    assert [example["entity"] for example in missing] == ["clicks", "products", "reviews"]


# ---------------------------------------------------------------- file-level refusals: nothing is lost


GOOD_ORDERS = b"order_id,user_id,product_id,quantity,unit_price,ordered_at\nO1,U1,P1,2,9.50,2026-03-01 10:00:00\n"


def truncated_gzip() -> bytes:
    return gzip.compress(GOOD_ORDERS * 200)[:-40]


@pytest.mark.parametrize(
    ("file_name", "content", "reason"),
    [
        ("2026-03-02.csv", b"order_id,user_id,product_id,quantity\nO2,U1,P1,2\n", "missing required column(s)"),
        ("2026-03-02.csv", b"", "empty file"),
        ("2026-03-02.csv.gz", truncated_gzip(), "corrupt or truncated gzip"),
        ("2026-03-02.csv.gz", b"this is not gzip data at all", "corrupt or truncated gzip"),
        ("2026-03-02.csv", GOOD_ORDERS.replace(b"U1", b"U\xff\xfe1"), "This file is not utf-8 encoded"),
        ("2026-03-02.csv", GOOD_ORDERS + b"O3,U1,P1,2,9.50,2026-03-02 10:00:00,surplus\n", "header has 6 columns"),
        ("2026-03-02.csv", b"order_id,Order_ID,user_id,product_id,quantity,unit_price,ordered_at\n", "appears twice"),
        ("2026-03-01.csv", GOOD_ORDERS.replace(b"9.50", b"9.99"), "already loaded"),
    ],
    ids=[
        "missing-required-column",
        "empty-file",
        "truncated-gzip",
        "corrupt-gzip",
        "non-utf8-bytes",
        "ragged-row",
        "duplicated-header",
        "same-day-delivered-twice-with-different-content",
    ],
)
def test_an_unreadable_file_is_refused_and_nothing_is_lost(settings: Settings, file_name, content, reason) -> None:
    first = landing_path(settings.landing_dir, "orders", FIRST_DAY)
    first.parent.mkdir(parents=True)
    first.write_bytes(GOOD_ORDERS)
    ingest_landing(settings).raise_for_refusals()
    bad = first.with_name(file_name)
    bad.write_bytes(content)

    report = ingest_landing(settings)

    assert [r.file for r in report.refused] == [f"orders/{file_name}"] and reason in report.refused[0].reason
    assert query(settings, "select source_file from audit.refusals") == [(f"orders/{file_name}",)]
    assert query(settings, "select order_id, unit_price from raw.orders") == [("O1", "9.50")]
    assert bad.read_bytes() == content  # the delivery stays in landing, to be fixed and delivered again
