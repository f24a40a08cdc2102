"""The whole cleaning and audit path on the real UCI Online Retail data (skipped where ../shared/datasets is absent)."""

from datetime import date

import pytest

from shopflow.ingest import ingest_landing
from shopflow.online_retail import import_online_retail
from shopflow.settings import Settings
from shopflow.transform import build_warehouse
from shopflow.warehouse import row_accounting

ONLINE_RETAIL = Settings().datasets_dir / "online-retail" / "by-day"
LAST_NIGHT = date(2011, 12, 9)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not ONLINE_RETAIL.is_dir(), reason="needs ../shared/datasets/online-retail"),
]


@pytest.fixture(scope="module")
def online_retail(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """All 305 days imported, ingested and built (once) for the last night."""
    settings = Settings(home=tmp_path_factory.mktemp("online-retail"))
    import_online_retail(ONLINE_RETAIL, settings.landing_dir)
    ingest_landing(settings).raise_for_refusals()
    build_warehouse(settings, LAST_NIGHT)
    return settings


def test_online_retail_accounting_holds_with_the_known_dirt(online_retail: Settings) -> None:
    orders = next(row for row in row_accounting(online_retail) if row["entity"] == "orders")

    assert orders["raw_rows"] == 541_909  # every source line, none lost by the adapter
    assert orders["is_balanced"] and orders["clean_rows"] + orders["quarantined_rows"] == 541_909
    reasons = orders["quarantined_by_reason"]
    assert reasons["missing_user_id"] == 135_080  # the dataset's documented null CustomerIDs
    assert reasons["non_product_item"] > 1_500  # POST, DOT, M, C2, BANK CHARGES, ... with a customer
    assert reasons["absurd_quantity"] >= 4  # 80,995 and 74,215 units and their cancellations
    assert 5_000 < reasons["duplicate_row"] <= 5_268  # exact repeats not already quarantined for another reason


GUEST_CHECKOUTS = ("expect_column_values_to_not_be_null", "user_id")  # warn: above 1% of lines, error: above 99%
SMALL_DELIVERY = ("expect_table_row_count_to_be_between", None)  # warn: 3x below the median, error: 10x


@pytest.mark.parametrize(
    ("night", "expected_warning"),
    [
        (date(2010, 12, 1), GUEST_CHECKOUTS),  # 37% anonymous lines; no volume baseline yet
        (date(2011, 2, 6), SMALL_DELIVERY),  # 279 lines, the smallest day
        (date(2011, 8, 30), GUEST_CHECKOUTS),  # 87% anonymous lines
        (LAST_NIGHT, GUEST_CHECKOUTS),  # 62% anonymous lines
    ],
    ids=["first-night", "smallest-day", "most-anonymous-day", "last-night"],
)
def test_online_retail_nights_pass_the_audit_with_their_known_warnings(
    online_retail: Settings, night: date, expected_warning: tuple[str, str | None]
) -> None:
    from shopflow.expectations.audit import audit_night

    report = audit_night(online_retail, night)

    report.raise_for_errors()
    (accounting,) = [o for o in report.results if o.suite == "quarantine.row_accounting"]
    assert accounting.success and accounting.severity == "error"
    assert expected_warning in {(o.expectation_type, o.column) for o in report.warnings if o.suite == "raw.orders"}
