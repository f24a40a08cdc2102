"""The whole cleaning path on the real UCI Online Retail data (skipped where ../shared/datasets is absent)."""

from datetime import date

import pytest

from shopflow.ingest import ingest_landing
from shopflow.online_retail import import_online_retail
from shopflow.settings import Settings
from shopflow.transform import build_warehouse
from shopflow.warehouse import row_accounting

ONLINE_RETAIL = Settings().datasets_dir / "online-retail" / "by-day"


@pytest.mark.slow
@pytest.mark.skipif(not ONLINE_RETAIL.is_dir(), reason="needs ../shared/datasets/online-retail")
def test_online_retail_accounting_holds_with_the_known_dirt(settings: Settings) -> None:
    import_online_retail(ONLINE_RETAIL, settings.landing_dir)
    ingest_landing(settings).raise_for_refusals()
    build_warehouse(settings, date(2011, 12, 9))

    orders = next(row for row in row_accounting(settings) if row["entity"] == "orders")

    assert orders["raw_rows"] == 541_909  # every source line, none lost by the adapter
    assert orders["is_balanced"] and orders["clean_rows"] + orders["quarantined_rows"] == 541_909
    reasons = orders["quarantined_by_reason"]
    assert reasons["missing_user_id"] == 135_080  # the dataset's documented null CustomerIDs
    assert reasons["non_product_item"] > 1_500  # POST, DOT, M, C2, BANK CHARGES, ... with a customer
    assert reasons["absurd_quantity"] >= 4  # 80,995 and 74,215 units and their cancellations
    assert 5_000 < reasons["duplicate_row"] <= 5_268  # exact repeats not already quarantined for another reason
