"""Each suite flags a planted problem with the right severity, and lets a clean night through.

Raw suites run on tiny deliveries ingested into a fresh warehouse (no dbt needed); mart and quarantine suites on
hand-made frames shaped like the marts.
"""

import shutil
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from shopflow.contract import ENTITIES, landing_path
from shopflow.expectations.night import read_deliveries
from shopflow.expectations.thresholds import CleaningLimits
from shopflow.ingest import ingest_landing
from shopflow.settings import Settings
from shopflow.warehouse import connect

TONIGHT = date(2026, 1, 4)
EARLIER_DAYS = ("2026-01-01", "2026-01-02", "2026-01-03")


def order(day: str, number: int, **changes: str) -> dict:
    """A clean order line delivered on ``day``."""
    return {
        "order_id": f"O{day}-{number}",
        "line_no": "1",
        "user_id": f"U{number % 5}",
        "product_id": f"P{number % 3}",
        "quantity": "2",
        "unit_price": "9.50",
        "ordered_at": f"{day} 10:00:00",
        "currency": "EUR",
        "status": "placed",
        "country": "DE",
    } | changes


def orders(day: str, rows: int = 20, **changes: str) -> list[dict]:
    return [order(day, number, **changes) for number in range(rows)]


def click(day: str, number: int, **changes: str) -> dict:
    return {
        "event_id": f"E{day}-{number}",
        "session_id": "S1",
        "user_id": "U1",
        "product_id": "P1",
        "event_type": "view",
        "occurred_at": f"{day} 09:00:00",
    } | changes


def failures(outcomes: list) -> set[tuple[str, str | None, str]]:
    """(expectation type, column, severity) of every failed expectation."""
    return {(o.expectation_type, o.column, o.severity) for o in outcomes if not o.success}


@pytest.fixture
def limits(settings: Settings) -> CleaningLimits:
    return CleaningLimits.from_dbt_project(settings.dbt_project_dir)


@pytest.fixture
def audit_raw(settings: Settings, limits: CleaningLimits, suites):
    """``audit_raw(entity, known_reviewers=())``: ingest the landing folder, validate tonight's delivery of
    ``entity`` and the deliveries suite; returns the outcomes."""

    def audit(entity: str, known_reviewers: tuple[str, ...] = ()) -> list:
        ingest_landing(settings).raise_for_refusals()
        with connect(settings, read_only=True) as con:
            deliveries = read_deliveries(con, TONIGHT)
        suite = suites.raw_suite(entity, deliveries, limits, list(known_reviewers))
        return suites.validate([suite, suites.deliveries_suite(deliveries)])

    return audit


@pytest.fixture(scope="module")
def warehouse_with_history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A warehouse holding three earlier days of 20 clean order lines (ingested once, copied per test)."""
    settings = Settings(home=tmp_path_factory.mktemp("history"))
    for day in EARLIER_DAYS:
        path = landing_path(settings.landing_dir, "orders", date.fromisoformat(day))
        path.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(orders(day)).to_csv(path, index=False)
    ingest_landing(settings).raise_for_refusals()
    return settings.warehouse_path


@pytest.fixture
def history(settings: Settings, warehouse_with_history: Path) -> None:
    """Three earlier days of 20 clean order lines in this test's warehouse."""
    shutil.copy(warehouse_with_history, settings.warehouse_path)


@pytest.mark.usefixtures("history")
def test_a_clean_delivery_passes_every_raw_expectation(write_landing, audit_raw) -> None:
    write_landing("orders", "2026-01-04", orders("2026-01-04"))
    outcomes = audit_raw("orders")
    assert failures(outcomes) == set()
    assert {o.severity for o in outcomes} == {"error", "warn"}


@pytest.mark.usefixtures("history")
@pytest.mark.parametrize(
    ("bad_prices", "severities"),
    [(1, {"warn"}), (15, {"warn", "error"})],
    ids=["one-bad-price-warns", "a-broken-price-format-errors"],
)
def test_unparsable_prices_warn_above_1_percent_and_error_above_half(
    write_landing, audit_raw, bad_prices, severities
) -> None:
    rows = orders("2026-01-04")
    for row in rows[:bad_prices]:
        row["unit_price"] = "12,50 EUR"
    write_landing("orders", "2026-01-04", rows)
    outcomes = audit_raw("orders")
    assert failures(outcomes) == {("expect_column_values_to_match_regex", "unit_price", s) for s in severities}
    failed = next(o for o in outcomes if not o.success)
    assert failed.unexpected_examples[0] == {"unit_price": "12,50 EUR", "_row_number": 1}


@pytest.mark.usefixtures("history")
@pytest.mark.parametrize(
    ("rows", "severities"),
    [(20, set()), (60, {"warn"}), (200, {"warn", "error"}), (6, {"warn"}), (2, {"warn", "error"})],
    ids=["as-usual", "3x-warns", "10x-spike-errors", "70-percent-drop-warns", "90-percent-drop-errors"],
)
def test_volume_against_the_median_of_earlier_deliveries(write_landing, audit_raw, rows, severities) -> None:
    write_landing("orders", "2026-01-04", orders("2026-01-04", rows))
    outcomes = audit_raw("orders")
    assert failures(outcomes) == {("expect_table_row_count_to_be_between", None, s) for s in severities}
    volume = next(o for o in outcomes if o.expectation_type == "expect_table_row_count_to_be_between")
    assert volume.observed_value == rows and "median 20 of the last 3 deliveries" in volume.description


def test_volume_has_no_baseline_before_three_earlier_deliveries(write_landing, audit_raw) -> None:
    for day in EARLIER_DAYS[1:]:
        write_landing("orders", day, orders(day))
    write_landing("orders", "2026-01-04", orders("2026-01-04", 500))
    outcomes = audit_raw("orders")
    (volume,) = [o for o in outcomes if o.expectation_type == "expect_table_row_count_to_be_between"]
    assert (volume.success, volume.observed_value, volume.severity) == (True, 500, "warn")
    assert volume.description == "no baseline: 2 earlier deliveries (needs 3, median above 0)"


@pytest.mark.usefixtures("history")
def test_an_entity_delivered_before_but_not_tonight_warns(write_landing, audit_raw) -> None:
    write_landing("clicks", "2026-01-03", [click("2026-01-03", 1)])
    write_landing("orders", "2026-01-04", orders("2026-01-04"))
    outcomes = audit_raw("orders")
    (missing,) = [o for o in outcomes if not o.success]
    assert (missing.suite, missing.severity, missing.unexpected_examples) == (
        "audit.loads",
        "warn",
        [{"rows_delivered": None, "entity": "clicks"}],
    )


@pytest.mark.usefixtures("history")
def test_unknown_columns_and_an_optional_column_that_stopped_coming_warn(write_landing, audit_raw) -> None:
    rows = [{**row, "gift_wrap": "yes"} for row in orders("2026-01-04")]
    write_landing("orders", "2026-01-04", rows, columns=[c for c in rows[0] if c != "country"])
    outcomes = audit_raw("orders")
    assert failures(outcomes) == {
        ("expect_column_values_to_be_null", "_extra", "warn"),
        ("expect_column_proportion_of_non_null_values_to_be_between", "country", "warn"),
    }
    extra = next(o for o in outcomes if o.column == "_extra")
    assert extra.unexpected_examples[0] == {"_extra": '{"gift_wrap":"yes"}', "_row_number": 1}


@pytest.mark.usefixtures("history")
@pytest.mark.parametrize(
    ("anonymous", "severities"), [(12, {"warn"}), (20, {"warn", "error"})], ids=["mostly-guests", "all-anonymous"]
)
def test_anonymous_order_lines_error_only_when_the_whole_delivery_is_anonymous(
    write_landing, audit_raw, anonymous, severities
) -> None:
    rows = orders("2026-01-04")
    for row in rows[:anonymous]:
        row["user_id"] = ""
    write_landing("orders", "2026-01-04", rows)
    assert failures(audit_raw("orders")) == {("expect_column_values_to_not_be_null", "user_id", s) for s in severities}


@pytest.mark.usefixtures("history")
def test_future_timestamps_in_most_rows_error(write_landing, audit_raw) -> None:
    rows = orders("2026-01-04")
    for row in rows[:12]:
        row["ordered_at"] = "2027-01-04 10:00:00"
    write_landing("orders", "2026-01-04", rows)
    failed = failures(audit_raw("orders"))
    assert failed == {
        ("expect_column_values_to_be_between", "parsed_ordered_at", "warn"),
        ("expect_column_values_to_be_between", "parsed_ordered_at", "error"),
    }


@pytest.mark.usefixtures("history")
def test_stale_deliveries_warn(write_landing, audit_raw) -> None:
    write_landing("orders", "2026-01-04", orders("2026-01-04", ordered_at="2026-01-02 10:00:00"))
    (stale,) = [o for o in audit_raw("orders") if not o.success]
    assert (stale.expectation_type, stale.severity, stale.observed_value) == (
        "expect_column_max_to_be_between",
        "warn",
        "2026-01-02T10:00:00",
    )


@pytest.mark.usefixtures("history")
def test_duplicate_lines_and_bad_values_in_a_few_rows_warn(write_landing, audit_raw) -> None:
    rows = orders("2026-01-04")
    rows[1] = rows[0]  # an identical line
    rows[2] |= {"quantity": "0", "status": "shipped", "currency": "euro"}
    write_landing("orders", "2026-01-04", rows)
    assert failures(audit_raw("orders")) == {
        ("expect_compound_columns_to_be_unique", ", ".join(ENTITIES["orders"].columns), "warn"),
        ("expect_column_values_to_not_be_in_set", "parsed_quantity", "warn"),
        ("expect_column_values_to_be_in_set", "status", "warn"),
        ("expect_column_values_to_match_regex", "currency", "warn"),
    }


def test_repeated_event_ids_and_unknown_event_types_warn(write_landing, audit_raw) -> None:
    events = [click("2026-01-04", number) for number in range(20)]
    events[1] = events[0]
    events[2] = events[2] | {"event_type": "Hover"}
    write_landing("clicks", "2026-01-04", events)
    assert failures(audit_raw("clicks")) == {
        ("expect_column_values_to_be_unique", "event_id", "warn"),
        ("expect_column_values_to_be_in_set", "event_type", "warn"),
    }


def test_reviews_by_unknown_users_warn_and_long_texts_warn(write_landing, audit_raw, limits) -> None:
    reviews = [
        {"review_id": f"R{n}", "product_id": "P1", "user_id": f"U{n}", "rating": "5", "title": "Nice", "body": "Good"}
        | {"created_at": "2026-01-04 12:00:00"}
        for n in range(10)
    ]
    reviews[3]["body"] = "x" * (limits.max_text_length + 1)
    write_landing("reviews", "2026-01-04", reviews)
    outcomes = audit_raw("reviews", known_reviewers=tuple(f"U{n}" for n in range(9)))
    assert failures(outcomes) == {
        ("expect_column_values_to_be_in_set", "user_id", "warn"),
        ("expect_column_value_lengths_to_be_between", "body", "warn"),
    }
    unknown = next(o for o in outcomes if o.column == "user_id" and not o.success)
    assert unknown.unexpected_examples == [{"user_id": "U9", "_row_number": 10}]
    too_long = next(o for o in outcomes if o.column == "body" and not o.success)
    assert too_long.unexpected_examples[0]["body"].endswith(f"({limits.max_text_length + 1} characters)")


def test_a_tiny_delivery_is_never_an_error(write_landing, audit_raw) -> None:
    reviews = [
        {"review_id": f"R{n}", "product_id": "P1", "body": "Good", "created_at": "2026-01-04 12:00:00", "rating": "7"}
        for n in range(3)
    ]
    write_landing("reviews", "2026-01-04", reviews)
    assert failures(audit_raw("reviews")) == {("expect_column_values_to_be_in_set", "rating", "warn")}


def test_catalogue_attributes_must_be_json_objects(write_landing, audit_raw) -> None:
    attributes = ['{"color": "oak"}'] * 8 + ["[1, 2]", "{broken"]
    products = [{"product_id": f"P{n}", "title": "Lamp", "attributes": a} for n, a in enumerate(attributes)]
    write_landing("products", "2026-01-04", products)
    outcomes = audit_raw("products")
    assert failures(outcomes) == {("expect_column_pair_values_to_be_equal", "attributes, parsed_attributes", "warn")}


# ---------------------------------------------------------------- marts and quarantine, on hand-made frames


def marts(**changes: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """One clean row per mart (the columns read by shopflow.expectations.night), with ``changes`` swapped in."""
    at = pd.Timestamp("2026-01-04 10:00:00")
    clean = {
        "fct_order_lines": pd.DataFrame(
            {"order_line_key": ["1:1"], "order_id": ["O1"], "user_id": ["U1"], "product_id": ["P1"]}
            | {"quantity": [2], "unit_price": [9.5], "ordered_at": [at]}
        ),
        "fct_clicks": pd.DataFrame(
            {"click_key": ["2:1"], "user_id": ["U1"], "product_id": ["P1"], "event_type": ["view"], "occurred_at": [at]}
        ),
        "fct_reviews": pd.DataFrame(
            {"review_id": ["R1"], "product_id": ["P1"], "user_id": ["U1"], "rating": [5], "body": ["Good"]}
            | {"created_at": [at]}
        ),
        "dim_products": pd.DataFrame(
            {"product_id": ["P1"], "title": ["Lamp"], "price": [9.5], "content_hash": ["abc"]}
        ),
        "dim_users": pd.DataFrame({"user_id": ["U1"]}),
        "daily_kpis": pd.DataFrame({"kpi_date": [at.date()], "conversion_rate": [0.5]}),
    }
    return clean | changes


def test_clean_marts_pass(suites, limits) -> None:
    assert failures(suites.validate(suites.mart_suites(marts(), limits))) == set()


def test_mart_keys_and_referential_integrity_are_errors(suites, limits) -> None:
    lines = marts()["fct_order_lines"]
    broken = pd.concat([lines, lines.assign(product_id="P9")])  # a repeated key and an unknown product
    outcomes = suites.validate(suites.mart_suites(marts(fct_order_lines=broken), limits))
    assert failures(outcomes) == {
        ("expect_column_values_to_be_unique", "order_line_key", "error"),
        ("expect_column_values_to_be_null", "product_id_not_in_dim_products", "error"),
    }
    unknown = next(o for o in outcomes if o.expectation_type == "expect_column_values_to_be_null" and not o.success)
    assert (unknown.suite, unknown.entity, unknown.description) == (
        "marts.fct_order_lines",
        "orders",
        "product_id is in dim_products (referential integrity)",
    )
    assert (unknown.unexpected_count, unknown.unexpected_examples) == (
        1,
        [{"product_id_not_in_dim_products": "P9", "order_line_key": "1:1"}],
    )


def test_a_fact_whose_every_key_is_unknown_fails_referential_integrity(suites, limits) -> None:
    lines = marts()["fct_order_lines"].assign(user_id="U404")  # no user of tonight's lines is in dim_users
    outcomes = suites.validate(suites.mart_suites(marts(fct_order_lines=lines), limits))
    assert failures(outcomes) == {("expect_column_values_to_be_null", "user_id_not_in_dim_users", "error")}
    unknown = next(o for o in outcomes if o.column == "user_id_not_in_dim_users" and not o.success)
    assert unknown.unexpected_examples[0]["user_id_not_in_dim_users"] == "U404"


def test_an_anonymous_review_is_not_an_unknown_user(suites, limits) -> None:
    reviews = marts()["fct_reviews"]
    anonymous = pd.concat([reviews, reviews.assign(review_id="R2", user_id=None)], ignore_index=True)
    assert failures(suites.validate(suites.mart_suites(marts(fct_reviews=anonymous), limits))) == set()


def shares(*rows: tuple[str, str, int, float]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Quarantine shares per entity and per reason, from (entity, reason, delivered rows, share) rows."""
    by_reason = pd.DataFrame(rows, columns=["entity", "quarantine_reason", "delivered_rows", "share"])
    per_entity = by_reason.groupby(["entity", "delivered_rows"], as_index=False)["share"].sum()
    return per_entity, by_reason


def test_row_accounting_gate_errors_when_raw_is_not_clean_plus_quarantined(suites) -> None:
    accounting = pd.DataFrame(
        [("orders", 10, 9), ("clicks", 5, 5)], columns=["entity", "raw_table_rows", "clean_plus_quarantined_rows"]
    )
    outcomes = suites.validate(suites.quarantine_suites(accounting, *shares()))
    (gate,) = [o for o in outcomes if not o.success]
    assert (gate.suite, gate.severity, gate.unexpected_examples) == (
        "quarantine.row_accounting",
        "error",
        [{"raw_table_rows": 10, "clean_plus_quarantined_rows": 9, "entity": "orders"}],
    )


@pytest.mark.parametrize(
    ("reason", "delivered", "share", "severities"),
    [
        ("bad_unit_price", 100, 0.03, set()),
        ("bad_unit_price", 100, 0.06, {"warn"}),
        ("bad_unit_price", 100, 0.6, {"warn", "error"}),
        ("bad_unit_price", 3, 0.67, {"warn"}),  # 2 of 3 rows: too few to call the delivery broken
        ("missing_user_id", 100, 0.87, {"warn"}),  # Online Retail, 2011-08-30: guest checkouts
        ("missing_user_id", 100, 1.0, {"warn", "error"}),
    ],
)
def test_share_quarantined_per_reason(suites, reason, delivered, share, severities) -> None:
    balanced = pd.DataFrame({"entity": ["orders"], "raw_table_rows": [10], "clean_plus_quarantined_rows": [10]})
    outcomes = suites.validate(suites.quarantine_suites(balanced, *shares(("orders", reason, delivered, share))))
    failed = {(o.suite, o.severity) for o in outcomes if not o.success}
    per_entity_warning = {("quarantine.share_by_entity", "warn")} if share > 0.05 else set()
    assert failed == {("quarantine.share_by_reason", s) for s in severities} | per_entity_warning


def test_fact_users_must_be_in_dim_users(suites, limits) -> None:
    clicks = marts()["fct_clicks"]
    stranger = pd.concat([clicks, clicks.assign(click_key="2:2", user_id="U7")])
    outcomes = suites.validate(suites.mart_suites(marts(fct_clicks=stranger), limits))
    (orphan,) = [o for o in outcomes if not o.success]
    assert (orphan.suite, orphan.column, orphan.severity, orphan.unexpected_examples) == (
        "marts.fct_clicks",
        "user_id_not_in_dim_users",
        "error",
        [{"user_id_not_in_dim_users": "U7", "click_key": "2:2"}],
    )
