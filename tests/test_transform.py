"""dbt on a tiny two-day shop whose every row has a known fate."""

import csv
import json
from datetime import date
from pathlib import Path

import duckdb
import pytest

from shopflow.contract import landing_path
from shopflow.ingest import ingest_landing
from shopflow.settings import Settings
from shopflow.transform import (
    DbtBuildError,
    build_warehouse,
    full_refresh_reason,
    generate_docs,
    project_fingerprint,
    run_unit_tests,
)
from shopflow.warehouse import connect, row_accounting, table_fingerprints

CLICK_COLUMNS = ["event_id", "session_id", "user_id", "product_id", "event_type", "occurred_at"]
ORDER_COLUMNS = ["order_id", "line_no", "user_id", "product_id", "quantity", "unit_price", "ordered_at"]
PRODUCT_COLUMNS = ["product_id", "title", "category", "price", "attributes"]
REVIEW_COLUMNS = ["review_id", "product_id", "user_id", "rating", "title", "body", "created_at"]

PRODUCTS_DAY1 = [
    ("P1", "Oak Desk Lamp", "lighting", "39.90", '{"color": "oak", "height_cm": 40}'),
    ("P2", "Steel Kettle", "kitchen", "24.50", "[1, 2]"),  # bad_attributes ...
    ("P2", "Steel Kettle", "kitchen", "24.50", "{}"),  # ... the clean row of the same delivery wins
    ("P3", "", "kitchen", "5.00", ""),  # missing_title
    ("POST", "Postage", "", "", ""),  # non_product_item
    ("P4", "Mug", "kitchen", "-1", ""),  # non_positive_price
]
PRODUCTS_DAY2 = [("P1", "Oak Desk Lamp XL", "lighting", "44.90", '{"color": "oak"}')]  # a new version
ORDERS_DAY1 = [
    ("O1", "1", "U1", "P1", "2", "39.90", "2026-01-01 10:00:00"),  # clean
    ("O1", "1", "U1", "P1", "2", "39.90", "2026-01-01 10:00:00"),  # duplicate_row
    ("O1", "2", "U1", "P2", "1", "24.50", "2026-01-01 10:00:00"),  # clean
    ("O2", "1", "U2", "P9", "1", "1.00", "2026-01-01 11:00:00"),  # unknown_product
    ("O3", "1", "", "P1", "1", "39.90", "2026-01-01 11:00:00"),  # missing_user_id
    ("O4", "1", "U3", "P1", "two", "39.90", "2026-01-01 11:00:00"),  # bad_quantity
    ("O5", "1", "U3", "P1", "1", "39.90", "2027-01-01 11:00:00"),  # future_timestamp
    ("O6", "1", "U3", "POST", "1", "3.00", "2026-01-01 11:00:00"),  # non_product_item
    ("O7", "1", "U3", "P3", "1", "5.00", "2026-01-01 11:00:00"),  # unknown_product (its product is quarantined)
]
ORDERS_DAY2 = [
    ("O1", "1001", "U1", "P1", "-1", "39.90", "2026-01-02 09:00:00"),  # clean return
    ("O1", "1", "U1", "P1", "2", "39.90", "2026-01-01 10:00:00"),  # duplicate_row across days
    ("O8", "1", "U2", "P2", "3", "24.50", "2026-01-02 12:00:00"),  # clean
]
CLICKS_DAY1 = [
    ("E1", "S1", "U1", "P1", "view", "2026-01-01 09:00:00"),
    ("E1", "S1", "U1", "P1", "view", "2026-01-01 09:00:00"),  # duplicate_event
    ("E2", "S1", "U1", "P1", "add_to_cart", "2026-01-01 09:01:00"),
    ("E3", "S1", "U1", "P2", "hover", "2026-01-01 09:02:00"),  # bad_event_type
    ("E4", "S2", "U4", "P2", "view", "2026-01-01 09:03:00"),
    ("E5", "S2", "U4", "P2", "view", "not a time"),  # bad_timestamp
]
REVIEWS_DAY2 = [
    ("R1", "P1", "U1", "5", "Great", 'Lovely lamp; it\'s "bright"', "2026-01-02 13:00:00"),
    ("R2", "P1", "U2", "7", "Hm", "Too bright", "2026-01-02 13:00:00"),  # bad_rating
    ("R3", "P2", "U2", "", "", "   ", "2026-01-02 13:00:00"),  # missing_body
]


def write(settings: Settings, entity: str, day: str, columns: list[str], rows: list[tuple]) -> None:
    path = landing_path(settings.landing_dir, entity, date.fromisoformat(day))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(rows)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = Settings(home=tmp_path_factory.mktemp("shop"))
    write(settings, "products", "2026-01-01", PRODUCT_COLUMNS, PRODUCTS_DAY1)
    write(settings, "products", "2026-01-02", PRODUCT_COLUMNS, PRODUCTS_DAY2)
    write(settings, "orders", "2026-01-01", ORDER_COLUMNS, ORDERS_DAY1)
    write(settings, "orders", "2026-01-02", ORDER_COLUMNS, ORDERS_DAY2)
    write(settings, "clicks", "2026-01-01", CLICK_COLUMNS, CLICKS_DAY1)
    write(settings, "reviews", "2026-01-02", REVIEW_COLUMNS, REVIEWS_DAY2)
    ingest_landing(settings).raise_for_refusals()
    build_warehouse(settings, date(2026, 1, 2))
    return settings


def query(settings: Settings, sql: str) -> list[tuple]:
    with connect(settings, read_only=True) as con:
        return con.execute(sql).fetchall()


def reasons(settings: Settings, entity: str) -> list[tuple]:
    return query(
        settings,
        f"select delivery_date::varchar, source_row_number, quarantine_reason from quarantine.quarantine_{entity} "
        "order by delivery_date, source_row_number",
    )


def test_every_dirty_order_line_gets_its_reason(shop: Settings) -> None:
    assert reasons(shop, "orders") == [
        ("2026-01-01", 2, "duplicate_row"),
        ("2026-01-01", 4, "unknown_product"),
        ("2026-01-01", 5, "missing_user_id"),
        ("2026-01-01", 6, "bad_quantity"),
        ("2026-01-01", 7, "future_timestamp"),
        ("2026-01-01", 8, "non_product_item"),
        ("2026-01-01", 9, "unknown_product"),
        ("2026-01-02", 2, "duplicate_row"),
    ]


def test_every_dirty_catalogue_click_and_review_row_gets_its_reason(shop: Settings) -> None:
    assert reasons(shop, "products") == [
        ("2026-01-01", 2, "bad_attributes"),
        ("2026-01-01", 4, "missing_title"),
        ("2026-01-01", 5, "non_product_item"),
        ("2026-01-01", 6, "non_positive_price"),
    ]
    assert reasons(shop, "clicks") == [
        ("2026-01-01", 2, "duplicate_event"),
        ("2026-01-01", 4, "bad_event_type"),
        ("2026-01-01", 6, "bad_timestamp"),
    ]
    assert reasons(shop, "reviews") == [("2026-01-02", 2, "bad_rating"), ("2026-01-02", 3, "missing_body")]


def test_quarantine_keeps_the_delivered_values(shop: Settings) -> None:
    sql = "select raw_record from quarantine.quarantine_orders where quarantine_reason = 'bad_quantity'"
    (raw_record,) = query(shop, sql)[0]
    assert '"quantity":"two"' in raw_record


def test_row_accounting_balances_for_every_entity(shop: Settings) -> None:
    accounting = {row["entity"]: row for row in row_accounting(shop)}
    assert {e: (r["raw_rows"], r["clean_rows"], r["quarantined_rows"]) for e, r in accounting.items()} == {
        "orders": (12, 4, 8),
        "products": (7, 3, 4),
        "clicks": (6, 3, 3),
        "reviews": (3, 1, 2),
    }
    assert all(row["is_balanced"] for row in accounting.values())
    assert accounting["orders"]["quarantined_by_reason"]["duplicate_row"] == 2


def test_marts_hold_the_known_answers(shop: Settings) -> None:
    assert query(shop, "select product_id, title, price::double, n_versions from marts.dim_products order by 1") == [
        ("P1", "Oak Desk Lamp XL", 44.9, 2),
        ("P2", "Steel Kettle", 24.5, 1),
    ]
    # U1 × P1: 1 view, 1 cart, bought 2 and returned 1 → 1 + 3 + 10·ln 2
    assert query(
        shop,
        "select n_views, n_add_to_cart, units_bought, units_returned, round(weight, 6) from marts.fct_interactions "
        "where user_id = 'U1' and product_id = 'P1'",
    ) == [(1, 1, 2, 1, 10.931472)]
    assert query(
        shop,
        "select kpi_date::varchar, orders, gross_revenue::double, returns_amount::double, visitors, conversion_rate "
        "from marts.daily_kpis order by 1",
    ) == [("2026-01-01", 1, 104.3, 0.0, 2, 0.5), ("2026-01-02", 1, 73.5, 39.9, None, None)]
    assert query(shop, "select user_id, n_orders, n_reviews from marts.dim_users order by 1") == [
        ("U1", 1, 1),
        ("U2", 1, 0),
        ("U4", 0, 0),
    ]


def test_marts_refuse_a_null_in_a_required_column(shop: Settings) -> None:
    """Required mart columns are NOT NULL constraints of the contracts, checked by DuckDB on every insert (not by a
    not_null test scanning the column after the build)."""
    required = {
        f"{table}.{column}"
        for table, column in query(
            shop,
            "select table_name, column_name from information_schema.columns "
            "where table_schema = 'marts' and is_nullable = 'NO'",
        )
    }
    keys = {"fct_clicks.click_key", "fct_order_lines.order_line_key", "fct_reviews.review_id", "daily_kpis.kpi_date"}
    assert keys | {"dim_products.product_id", "dim_users.user_id", "fct_interactions.product_id"} <= required
    with connect(shop) as con, pytest.raises(duckdb.ConstraintException, match="NOT NULL constraint failed"):
        con.execute(
            "insert into marts.fct_reviews (review_id, product_id, body, created_at) "
            "values ('R9', null, 'Fine', timestamp '2026-01-02 13:00:00')"
        )


def test_nights_skip_the_dbt_unit_tests_and_the_suite_runs_them(shop: Settings) -> None:
    built = build_warehouse(shop, date(2026, 1, 2))
    assert built.statuses and "unit_test." not in (shop.dbt_target_dir / "run_results.json").read_text()
    unit = run_unit_tests(shop)
    ran = [node["unique_id"] for node in json.loads((shop.dbt_target_dir / "run_results.json").read_text())["results"]]
    assert sorted(ran) == sorted(json.loads((shop.dbt_target_dir / "manifest.json").read_text())["unit_tests"])
    assert unit.statuses == {"pass": len(ran)}


def test_building_the_same_night_twice_gives_identical_marts(shop: Settings) -> None:
    with connect(shop, read_only=True) as con:
        before = table_fingerprints(con, ("marts", "quarantine"))
    build_warehouse(shop, date(2026, 1, 2))
    with connect(shop, read_only=True) as con:
        assert table_fingerprints(con, ("marts", "quarantine")) == before


def last_dbt_log(settings: Settings) -> str:
    """dbt's debug log of its latest invocation (dbt.log accumulates them)."""
    return (settings.dbt_log_dir / "dbt.log").read_text().rsplit("Running with dbt=", 1)[-1]


def test_an_earlier_night_sees_only_its_deliveries_without_parsing_the_project_again(shop: Settings) -> None:
    build_warehouse(shop, date(2026, 1, 1))
    try:
        assert query(shop, "select title from marts.dim_products where product_id = 'P1'") == [("Oak Desk Lamp",)]
        assert query(shop, "select count(*) from marts.fct_reviews") == [(0,)]
        # another run date, the same parsed project: dbt's partial parsing found nothing to re-parse
        assert "Partial parsing enabled, no changes found, skipping parsing" in last_dbt_log(shop)
    finally:
        build_warehouse(shop, date(2026, 1, 2))


def test_a_failing_build_names_the_failing_node(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)  # an empty warehouse, no raw tables at all: every staging view fails
    with connect(settings):
        pass
    with pytest.raises(DbtBuildError, match="stg_shop__orders"):
        build_warehouse(settings, date(2026, 1, 1))
    with duckdb.connect(str(settings.warehouse_path)) as con:
        assert not con.execute(
            "select count(*) from information_schema.tables where table_schema = 'marts'"
        ).fetchone()[0]
        assert con.execute("select full_refresh, finished_at from audit.dbt_builds").fetchall() == [(True, None)]
    # the click chain may now hold rows fct_clicks never received: the next build must be full
    with connect(settings) as con:
        reason = full_refresh_reason(con, date(2026, 1, 2), project_fingerprint(settings))
    assert reason == "the last build did not finish"


def test_docs_are_one_offline_html_file_with_the_marts(shop: Settings) -> None:
    page = generate_docs(shop)
    assert page.parent == shop.dbt_target_dir and page.name == "static_index.html"
    html = page.read_text()
    assert "fct_interactions" in html and "quarantine_reason" in html


def click(event_id: str, product_id: str, minute: int, day: int = 1) -> tuple:
    return (event_id, "S1", "U1", product_id, "view", f"2026-01-0{day} 09:{minute:02d}:00")


def product(product_id: str) -> tuple:
    return (product_id, f"Product {product_id}", "kitchen", "9.90", "{}")


def built_rows(settings: Settings) -> dict[str, list[tuple]]:
    """Every row of every cleaned table, sorted, without classified_on (which night last re-checked a row)."""
    with connect(settings, read_only=True) as con:
        tables = con.execute(
            "select schema_name, table_name from duckdb_tables() "
            "where schema_name in ('intermediate', 'marts', 'quarantine') order by all"
        ).fetchall()
        return {
            f"{schema}.{table}": sorted(
                con.execute(f"select * exclude (classified_on) from {schema}.{table}").fetchall()
                if table == "int_clicks__classified"
                else con.execute(f"select * from {schema}.{table}").fetchall(),
                key=repr,
            )
            for schema, table in tables
        }


def test_incremental_nights_equal_a_full_rebuild(tmp_path: Path) -> None:
    """Three incremental nights in which earlier clicks and order lines change fate without being delivered again:
    products arrive after their clicks and orders (unknown_product -> clean), a re-delivered day supersedes the first
    copy of an event (duplicate -> clean) and drops a product from the catalogue (clean -> unknown_product), so pairs
    of fct_interactions appear, change and vanish. Every table equals a full rebuild."""
    settings = Settings(home=tmp_path)
    write(settings, "products", "2026-01-01", PRODUCT_COLUMNS, [product("P1"), product("P2")])
    day1_clicks = [
        click("E1", "P1", 0),
        click("E2", "P3", 1),  # P3 and P4 arrive on day 2
        click("", "P1", 2),  # no event id: duplicates are identical events
        click("E4", "P2", 3),
        click("E7", "P4", 4),
    ]
    write(settings, "clicks", "2026-01-01", CLICK_COLUMNS, day1_clicks)
    write(settings, "products", "2026-01-02", PRODUCT_COLUMNS, [product("P3"), product("P4")])
    day2_clicks = [click("E1", "P1", 0), click("", "P1", 2), click("E2", "P3", 1), click("E8", "P2", 6, day=2)]
    write(settings, "clicks", "2026-01-02", CLICK_COLUMNS, day2_clicks)
    write(settings, "clicks", "2026-01-03", CLICK_COLUMNS, [click("E6", "P1", 5, day=3)])
    write(
        settings,
        "orders",
        "2026-01-01",
        ORDER_COLUMNS,
        [
            ("O1", "1", "U2", "P3", "2", "9.90", "2026-01-01 10:00:00"),  # P3 arrives on day 2
            ("O2", "1", "U3", "P2", "1", "9.90", "2026-01-01 11:00:00"),  # P2 leaves the catalogue on night 3
        ],
    )
    write(
        settings, "orders", "2026-01-02", ORDER_COLUMNS, [("O1", "2", "U2", "P3", "-1", "9.90", "2026-01-02 09:00:00")]
    )

    nights = []
    for night in (date(2026, 1, 1), date(2026, 1, 2)):
        ingest_landing(settings, until=night).raise_for_refusals()
        nights.append(build_warehouse(settings, night))
    assert reasons(settings, "clicks") == [  # day 1's E2 and E7 are clean now that P3 and P4 exist
        ("2026-01-02", 1, "duplicate_event"),
        ("2026-01-02", 2, "duplicate_event"),
        ("2026-01-02", 3, "duplicate_event"),
    ]
    # Night 3 re-delivers day 1: its clicks without E1, its products without P2.
    write(settings, "clicks", "2026-01-01", CLICK_COLUMNS, day1_clicks[1:])
    write(settings, "products", "2026-01-01", PRODUCT_COLUMNS, [product("P1")])
    ingest_landing(settings, until=date(2026, 1, 3), redeliver=True).raise_for_refusals()
    nights.append(build_warehouse(settings, date(2026, 1, 3)))

    assert [night.full_refresh_reason for night in nights] == ["no build recorded", None, None]
    assert sorted(reasons(settings, "clicks")) == sorted(
        [
            *[("2026-01-01", row, "superseded_delivery") for row in range(1, 6)],
            ("2026-01-01", 3, "unknown_product"),  # version 2's E4: P2 left the catalogue ...
            ("2026-01-02", 2, "duplicate_event"),
            ("2026-01-02", 3, "duplicate_event"),
            ("2026-01-02", 4, "unknown_product"),  # ... and so did day 2's E8, although day 2 was not re-delivered
        ]
    )
    assert query(settings, "select event_id from marts.fct_clicks order by event_id nulls first") == [
        (None,),
        ("E1",),  # day 2's copy is the first one delivered now
        ("E2",),
        ("E6",),
        ("E7",),
    ]
    interactions = "select user_id, product_id, n_views, units_bought, units_returned from marts.fct_interactions"
    assert query(settings, f"{interactions} order by all") == [
        ("U1", "P1", 3, 0, 0),
        ("U1", "P3", 1, 0, 0),
        ("U1", "P4", 1, 0, 0),
        ("U2", "P3", 0, 2, 1),  # U1/P2 and U3/P2 are gone with P2
    ]
    incremental = built_rows(settings)
    rebuilt = build_warehouse(settings, date(2026, 1, 3), full_refresh=True)
    assert rebuilt.full_refresh_reason == "requested"
    assert built_rows(settings) == incremental


def test_full_refresh_when_incremental_state_cannot_be_trusted(shop: Settings) -> None:
    fingerprint = project_fingerprint(shop)
    with connect(shop) as con:
        assert full_refresh_reason(con, date(2026, 1, 2), fingerprint) is None
        changed = full_refresh_reason(con, date(2026, 1, 2), "another project")
        assert changed == "the dbt project changed since the last build"
        earlier = full_refresh_reason(con, date(2025, 12, 31), fingerprint)
        assert earlier == "run date before the last build's (2026-01-02)"


def test_the_build_after_a_failed_one_is_full_so_no_click_is_lost(tmp_path: Path) -> None:
    """Night 2's build classifies its click, then fails at fct_clicks. An incremental night 3 would never apply that
    click (it was classified on night 2), and dbt's row-accounting test would fail that night and every one after."""
    settings = Settings(home=tmp_path)
    write(settings, "products", "2026-01-01", PRODUCT_COLUMNS, [product("P1")])
    for day, event_id in ((1, "E1"), (2, "E2"), (3, "E3")):
        write(settings, "clicks", f"2026-01-0{day}", CLICK_COLUMNS, [click(event_id, "P1", 0, day=day)])
    ingest_landing(settings, until=date(2026, 1, 1)).raise_for_refusals()
    build_warehouse(settings, date(2026, 1, 1))

    ingest_landing(settings, until=date(2026, 1, 2)).raise_for_refusals()
    with connect(settings) as con:  # on_schema_change='fail': fct_clicks fails after int_clicks__classified ran
        con.execute("alter table marts.fct_clicks add column stray integer")
    with pytest.raises(DbtBuildError, match="fct_clicks"):
        build_warehouse(settings, date(2026, 1, 2))
    assert query(settings, "select event_id from intermediate.int_clicks__classified order by 1") == [("E1",), ("E2",)]
    with connect(settings) as con:
        con.execute("alter table marts.fct_clicks drop column stray")

    ingest_landing(settings, until=date(2026, 1, 3)).raise_for_refusals()
    night = build_warehouse(settings, date(2026, 1, 3))
    assert night.full_refresh_reason == "the last build did not finish"
    assert query(settings, "select event_id from marts.fct_clicks order by 1") == [("E1",), ("E2",), ("E3",)]
