"""The synthetic demo shop: determinism, landing layout, dirt bookkeeping and the behavioural signal."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shopflow.contract import CLICK_EVENT_TYPES, ENTITIES, ORDER_STATUSES, landing_path
from shopflow.demo import DIRT_KINDS, DemoConfig, DemoSummary, generate_demo_shop

TINY = DemoConfig(products=60, users=200, days=4, sessions_per_user_day=0.5, seed=7, dirt_rate=0.05)
CLEAN = DemoConfig(products=300, users=4000, days=12, sessions_per_user_day=0.5, seed=3, dirt_rate=0.0)
DIRTY = DemoConfig(products=600, users=5000, days=10, sessions_per_user_day=0.5, seed=11, dirt_rate=0.1)

#: Dirt kinds that add exact copies of clean rows (found as duplicate keys); the others break one value.
DUPLICATE_KINDS = {"duplicate_row", "duplicate_across_days", "duplicate_event", "duplicate_review_id"}
#: The key that identifies a clean row of each entity.
KEYS = {
    "orders": ["order_id", "line_no"],
    "clicks": ["event_id"],
    "products": ["product_id", "updated_at"],
    "reviews": ["review_id"],
}
MONEY = r"^\d+\.\d{2}$"
MAX_PLAUSIBLE_PRICE = 100_000
MAX_PLAUSIBLE_QUANTITY = 1_000

ABUSE = r"idiot|moron|crap|garbage|trash|clown|damn|scam"
SPAM = r"https?://|www\.|@|\+\d|bit\.ly|code [A-Z]"


def _load(landing: Path, entity: str) -> pd.DataFrame:
    """Every delivered row of an entity as strings ("" for missing), with the file's day in ``file_day``."""
    frames = [
        pd.read_csv(path, dtype=str, keep_default_na=False).assign(file_day=path.stem)
        for path in sorted((landing / entity).glob("*.csv"))
    ]
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def clean_shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DemoSummary, dict[str, pd.DataFrame]]:
    landing = tmp_path_factory.mktemp("clean") / "landing"
    summary = generate_demo_shop(CLEAN, landing)
    return landing, summary, {entity: _load(landing, entity) for entity in ENTITIES}


@pytest.fixture(scope="module")
def dirty_shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[DemoSummary, dict[str, pd.DataFrame]]:
    landing = tmp_path_factory.mktemp("dirty") / "landing"
    summary = generate_demo_shop(DIRTY, landing)
    return summary, {entity: _load(landing, entity) for entity in ENTITIES}


# ---------------------------------------------------------------- a validator independent of the generator


def _timestamp_until_file_day(frame: pd.DataFrame, column: str) -> pd.Series:
    """Parses, and lies no later than the delivery day (a row re-delivered a day later keeps its time)."""
    parsed = pd.to_datetime(frame[column], format="%Y-%m-%d %H:%M:%S", errors="coerce")
    return parsed.dt.strftime("%Y-%m-%d") <= frame["file_day"]


def _integers(values: pd.Series) -> pd.Series:
    return pd.to_numeric(values.where(values.str.fullmatch(r"-?\d+"), None), errors="coerce")


def _prices_ok(values: pd.Series) -> pd.Series:
    return values.str.fullmatch(MONEY) & (pd.to_numeric(values, errors="coerce") < MAX_PLAUSIBLE_PRICE)


def _is_json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


def valid_rows(entity: str, frame: pd.DataFrame, known_products: set[str]) -> pd.Series:
    """Which rows satisfy the contract's value rules: types, ranges, known ids, no future timestamps."""
    known = frame["product_id"].isin(known_products) if entity != "products" else frame["product_id"] != ""
    if entity == "orders":
        quantity = _integers(frame["quantity"])
        returned_or_cancelled = frame["status"].isin(["returned", "cancelled"])
        return (
            (frame["order_id"] != "")
            & (frame["user_id"] != "")
            & known
            & quantity.notna()
            & (quantity != 0)
            & (quantity.abs() < MAX_PLAUSIBLE_QUANTITY)
            & ((quantity < 0) == returned_or_cancelled)
            & _prices_ok(frame["unit_price"])
            & _timestamp_until_file_day(frame, "ordered_at")
            & _integers(frame["line_no"]).notna()
            & frame["status"].isin(ORDER_STATUSES)
            & (frame["currency"] == "EUR")
        )
    if entity == "clicks":
        return (
            (frame["event_id"] != "")
            & (frame["session_id"] != "")
            & (frame["user_id"] != "")
            & known
            & frame["event_type"].isin(CLICK_EVENT_TYPES)
            & _timestamp_until_file_day(frame, "occurred_at")
        )
    if entity == "products":
        return (
            known
            & (frame["title"] != "")
            & _prices_ok(frame["price"])
            & frame["attributes"].map(_is_json_object)
            & (frame["currency"] == "EUR")
            & _timestamp_until_file_day(frame, "updated_at")
        )
    return (
        (frame["review_id"] != "")
        & known
        & (frame["body"] != "")
        & frame["rating"].isin(["1", "2", "3", "4", "5"])
        & _timestamp_until_file_day(frame, "created_at")
    )


# ---------------------------------------------------------------- determinism and layout


def test_same_config_writes_identical_bytes_and_another_seed_does_not(tmp_path: Path) -> None:
    first = generate_demo_shop(TINY, tmp_path / "a")
    second = generate_demo_shop(TINY, tmp_path / "b")
    generate_demo_shop(DemoConfig(**{**TINY.__dict__, "seed": 8}), tmp_path / "c")

    relative = [path.relative_to(tmp_path / "a") for path in first.files]
    assert relative == [path.relative_to(tmp_path / "b") for path in second.files]
    for name in relative:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert first.to_dict()["dirt"] == second.to_dict()["dirt"]
    assert any((tmp_path / "a" / name).read_bytes() != (tmp_path / "c" / name).read_bytes() for name in relative)


def test_one_file_per_entity_per_day_with_every_contract_column(tmp_path: Path) -> None:
    summary = generate_demo_shop(TINY, tmp_path)

    days = [TINY.start + timedelta(days=i) for i in range(TINY.days)]
    expected = {landing_path(tmp_path, entity, day) for entity in ENTITIES for day in days}
    assert set(summary.files) == expected
    assert {path for path in tmp_path.glob("*/*") if path.is_file()} == expected
    for path in expected:
        header = pd.read_csv(path, dtype=str, nrows=0).columns
        assert tuple(header) == ENTITIES[path.parent.name].columns, path
    rows = {entity: len(_load(tmp_path, entity)) for entity in ENTITIES}
    assert rows == summary.rows
    assert json.loads(json.dumps(summary.to_dict()))["rows"] == summary.rows


def test_parquet_option_writes_readable_string_tables(tmp_path: Path) -> None:
    config = DemoConfig(**{**TINY.__dict__, "file_format": "parquet"})
    summary = generate_demo_shop(config, tmp_path)

    assert all(path.suffix == ".parquet" for path in summary.files)
    assert len(summary.files) == len(ENTITIES) * config.days
    rows = dict.fromkeys(ENTITIES, 0)
    for path in summary.files:
        table = pq.read_table(path)
        assert tuple(table.column_names) == ENTITIES[path.parent.name].columns
        assert all(field.type == pa.string() for field in table.schema)
        rows[path.parent.name] += table.num_rows
    assert rows == summary.rows
    # The same seed gives the same rows whatever the file format.
    csv_summary = generate_demo_shop(TINY, tmp_path / "csv")
    assert csv_summary.rows == summary.rows


def test_rejects_unusable_settings(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="file_format"):
        generate_demo_shop(DemoConfig(file_format="xlsx"), tmp_path)
    with pytest.raises(ValueError, match="dirt_rate"):
        generate_demo_shop(DemoConfig(dirt_rate=1.5), tmp_path)


# ---------------------------------------------------------------- dirt


def test_clean_shop_has_only_valid_unique_rows(clean_shop) -> None:
    _, summary, frames = clean_shop
    assert all(count == 0 for kinds in summary.dirt.values() for count in kinds.values())
    known_products = set(frames["products"]["product_id"])
    for entity, frame in frames.items():
        assert len(frame) > 0, entity
        assert valid_rows(entity, frame, known_products).all(), entity
        assert not frame.duplicated(KEYS[entity]).any(), entity
    assert len(known_products) == CLEAN.products


def test_dirt_counts_match_what_a_validator_finds(dirty_shop) -> None:
    summary, frames = dirty_shop
    known_products = set(frames["products"]["product_id"])
    for entity, frame in frames.items():
        injected = summary.dirt[entity]
        assert set(injected) == set(DIRT_KINDS[entity])
        assert all(count > 0 for count in injected.values()), (entity, injected)

        valid = valid_rows(entity, frame, known_products)
        defects = sum(n for kind, n in injected.items() if kind not in DUPLICATE_KINDS)
        duplicates = sum(n for kind, n in injected.items() if kind in DUPLICATE_KINDS)
        assert (~valid).sum() == defects, entity
        assert frame[valid].duplicated(KEYS[entity]).sum() == duplicates, entity

        clean_rows = summary.rows[entity] - sum(injected.values())
        expected = DIRTY.dirt_rate * clean_rows
        assert abs(sum(injected.values()) - expected) <= 4 * expected**0.5 + 2, (entity, expected, injected)


def test_dirty_copies_leave_clean_keys_unique(dirty_shop) -> None:
    """Defective copies carry fresh ids, so the valid rows minus exact duplicates are unique by key."""
    _, frames = dirty_shop
    known_products = set(frames["products"]["product_id"])
    for entity in ("orders", "clicks", "reviews"):
        frame = frames[entity]
        valid = valid_rows(entity, frame, known_products)
        defective = frame[~valid]
        clean = frame[valid].drop(columns="file_day").drop_duplicates()
        assert not clean.duplicated(KEYS[entity]).any(), entity
        id_column = KEYS[entity][0]
        assert not set(defective[id_column]) & set(clean[id_column]), entity


# ---------------------------------------------------------------- behaviour


def test_users_browse_and_buy_within_their_favourite_category(clean_shop) -> None:
    _, _, frames = clean_shop
    category = frames["products"].drop_duplicates("product_id").set_index("product_id")["category"]
    uniform_share = 1 / category.nunique()

    def top_category_share(rows: pd.DataFrame, min_rows: int) -> float:
        """Mean over users with enough rows of the share of their rows in their most frequent category."""
        counts = rows.groupby(["user_id", rows["product_id"].map(category)]).size().groupby("user_id")
        total = counts.sum()
        return (counts.max() / total)[total >= min_rows].mean()

    views = frames["clicks"][frames["clicks"]["event_type"] == "view"]
    purchases = frames["orders"][frames["orders"]["status"] == "placed"]
    assert top_category_share(views, min_rows=10) > 4 * uniform_share
    assert top_category_share(purchases, min_rows=4) > 4 * uniform_share


def test_funnel_rates_and_orders_follow_purchase_clicks(clean_shop) -> None:
    _, _, frames = clean_shop
    clicks, orders = frames["clicks"], frames["orders"]
    events = clicks["event_type"].value_counts()
    assert 0.12 < events["add_to_cart"] / events["view"] < 0.2
    assert 0.1 < events["remove_from_cart"] / events["add_to_cart"] < 0.2
    assert 0.3 < events["purchase"] / (events["add_to_cart"] - events["remove_from_cart"]) < 0.5

    placed = orders[orders["status"] == "placed"]
    purchases_per_day = clicks[clicks["event_type"] == "purchase"].groupby("file_day").size()
    assert placed.groupby("file_day").size().equals(purchases_per_day)
    lines = placed.assign(line_no=placed["line_no"].astype(int)).groupby("order_id")["line_no"]
    assert (lines.min() == 1).all() and (lines.max() == lines.size()).all() and (lines.nunique() == lines.size()).all()
    assert placed["quantity"].isin(["1", "2", "3"]).all() and (placed["quantity"] == "1").mean() > 0.7


def test_products_launched_later_get_interactions_only_from_launch_day(clean_shop) -> None:
    _, _, frames = clean_shop
    launch_day = frames["products"].groupby("product_id")["file_day"].min()
    first_day = CLEAN.start.isoformat()
    late = launch_day[launch_day > first_day]
    assert 0.2 < len(late) / len(launch_day) < 0.4
    assert (launch_day == first_day).sum() == len(frames["products"][frames["products"]["file_day"] == first_day])

    clicks = frames["clicks"]
    clicked_day = clicks["occurred_at"].str[:10]
    assert (clicked_day >= clicks["product_id"].map(launch_day)).all()
    clicked_late = clicks[clicks["product_id"].isin(late.index)]["product_id"].nunique()
    assert clicked_late > 0.5 * len(late)


def test_products_file_after_day_one_is_a_delta_with_some_updates(clean_shop) -> None:
    _, _, frames = clean_shop
    products = frames["products"]
    later = products[products["file_day"] > CLEAN.start.isoformat()]
    assert len(later) < 0.5 * len(products)
    versions = products.groupby("product_id").size()
    assert (versions > 1).sum() > 0  # a few price or title changes
    changed = products[products["product_id"].isin(versions[versions > 1].index)]
    assert (changed.groupby("product_id")[["price", "title"]].nunique() > 1).any(axis=1).all()


def test_returns_and_cancellations_undo_earlier_lines(clean_shop) -> None:
    _, _, frames = clean_shop
    orders = frames["orders"]
    placed = orders[orders["status"] == "placed"].set_index(["order_id", "line_no"])
    for status, same_day in (("returned", False), ("cancelled", True)):
        undo = orders[orders["status"] == status]
        assert len(undo) > 0, status
        assert (_integers(undo["quantity"]) < 0).all()
        original_line = (_integers(undo["line_no"]) - 1000).astype(str)
        original = placed.loc[list(zip(undo["order_id"], original_line, strict=True))]
        assert (original["product_id"].to_numpy() == undo["product_id"].to_numpy()).all()
        assert (original["quantity"].astype(int).to_numpy() == -undo["quantity"].astype(int).to_numpy()).all()
        if same_day:
            assert (original["file_day"].to_numpy() == undo["file_day"].to_numpy()).all()
        else:
            assert (original["file_day"].to_numpy() < undo["file_day"].to_numpy()).all()
    share = (orders["status"] == "returned").sum() / len(placed)
    assert 0.005 < share < 0.04


def test_reviews_mix_normal_abusive_and_spam_texts(clean_shop) -> None:
    _, _, frames = clean_shop
    reviews = frames["reviews"]
    placed = frames["orders"][frames["orders"]["status"] == "placed"]
    assert 0.03 < len(reviews) / len(placed) < 0.1

    abusive = reviews["body"].str.contains(ABUSE, case=False)
    spam = reviews["body"].str.contains(SPAM)
    assert not (abusive & spam).any()
    for share in (abusive.mean(), spam.mean()):
        assert 0.005 < share < 0.05
    normal = reviews[~abusive & ~spam]
    assert normal["rating"].astype(int).mean() > 3.5
    assert normal["body"].nunique() > 0.5 * len(normal)
    # Review texts name the product's style and kind, e.g. "oak desk lamp" for "Nordlys Oak Desk Lamp 40 cm".
    title = frames["products"].drop_duplicates("product_id").set_index("product_id")["title"]
    words = normal["product_id"].map(title).str.split().str[1].str.lower()
    assert all(word in body.lower() for word, body in zip(words, normal["body"], strict=True) if word != "")


def test_catalogue_text_reveals_category_and_attributes_are_facts(clean_shop) -> None:
    _, _, frames = clean_shop
    products = frames["products"].drop_duplicates("product_id")
    assert products["category"].nunique() >= 10 and products["brand"].nunique() >= 20
    assert products.groupby("brand")["category"].nunique().max() <= 2
    attributes = products["attributes"].map(json.loads)
    assert attributes.map(lambda a: {"color", "material"} <= set(a) and len(a) == 3).all()
    assert products["title"].str.fullmatch(r"\w+ [\w ]+ [\d.]+ (cm|kg|g|ml|pages)").all()
    prices = products["price"].astype(float)
    assert prices.min() > 0 and prices.median() < 100
    assert 0 < (products["description"] != "").mean() < 0.6
    assert set(products["updated_at"].str[:10]) <= {
        (CLEAN.start + timedelta(days=i)).isoformat() for i in range(CLEAN.days)
    }
    assert date.fromisoformat(products["file_day"].min()) == CLEAN.start
