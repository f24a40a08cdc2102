"""The dbt project's cleaning (staging + intermediate: typed rows, quarantine reasons) written in pandas.

It is the peer a team would hand-write instead of dbt: the same rules in the same priority order, on the same
raw tables (every column VARCHAR as delivered plus lineage), giving one quarantine reason (or None = clean) per
raw row. :func:`clean_counts` must equal the dbt build's per-entity, per-reason counts; ``bench/cleaning.py``
asserts that. Vectorised pandas throughout (no row loops except regular expressions over distinct ids).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

STATUSES = ("placed", "cancelled", "returned")
CLICK_EVENT_TYPES = ("view", "add_to_cart", "remove_from_cart", "purchase")
LINEAGE_ORDER = ["_delivery_date", "_load_id", "_row_number"]


def project_rules(project_dir: Path) -> dict:
    """The cleaning vars of ``dbt_project.yml`` (thresholds, shop opening, clock skew)."""
    return yaml.safe_load((project_dir / "dbt_project.yml").read_text())["vars"]


def service_patterns(project_dir: Path) -> list[re.Pattern]:
    return [re.compile(p) for p in pd.read_csv(project_dir / "seeds" / "service_items.csv", dtype=str)["pattern"]]


def clean_text(column: pd.Series) -> pd.Series:
    """DuckDB ``nullif(trim(x), '')``: spaces trimmed, blank → missing."""
    trimmed = column.astype("string").str.strip(" ")
    return trimmed.mask(trimmed == "")


def to_integer(text: pd.Series) -> pd.Series:
    """``try_cast(x as integer)``: whole numbers only (DuckDB rounds decimals, handled as numbers here)."""
    number = pd.to_numeric(text, errors="coerce")
    return number.round().where(number.abs() < 2**31).astype("Float64")


def to_decimal(text: pd.Series) -> pd.Series:
    """``try_cast(x as decimal(18, 3))``: plain decimal notation; inf/nan/exponents are not decimals."""
    plain = text.where(text.str.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)", na=False))
    return pd.to_numeric(plain, errors="coerce").round(3)


def to_timestamp(text: pd.Series) -> pd.Series:
    """``try_cast(x as timestamp)`` for ISO dates and date-times."""
    iso = text.where(text.str.fullmatch(r"\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?", na=False))
    return pd.to_datetime(iso, errors="coerce", format="ISO8601")


def is_unparsable(text: pd.Series, parsed: pd.Series) -> pd.Series:
    return text.notna() & parsed.isna()


def first_failure(checks: list[tuple[pd.Series, str]], index: pd.Index) -> pd.Series:
    """The first true check's reason per row (None when none is true), like the ``first_failure`` macro."""
    conditions = [condition.fillna(False).to_numpy(dtype=bool) for condition, _ in checks]
    reasons = np.select(conditions, [reason for _, reason in checks], default=None)
    return pd.Series(reasons, index=index, dtype=object)


def superseded(raw: pd.DataFrame) -> pd.Series:
    return raw["_load_id"] < raw.groupby("_delivery_date")["_load_id"].transform("max")


def timestamp_checks(parsed: pd.Series, delivery_date: pd.Series, rules: dict) -> list[tuple[pd.Series, str]]:
    latest = pd.to_datetime(delivery_date) + pd.Timedelta(days=1) + pd.Timedelta(hours=rules["max_clock_skew_hours"])
    return [
        (parsed.isna(), "bad_timestamp"),
        (parsed >= latest, "future_timestamp"),
        (parsed < pd.Timestamp(rules["shop_opened_at"]), "before_shop_opened"),
    ]


def service_ids(product_ids: pd.Series, patterns: list[re.Pattern]) -> set[str]:
    """Distinct ids matching a service-item pattern (regular expressions over distinct ids only)."""
    return {pid for pid in product_ids.dropna().unique() if any(p.search(pid) for p in patterns)}


def relational(reason: pd.Series, checks: list[tuple[pd.Series, str]]) -> pd.Series:
    return reason.where(reason.notna(), first_failure(checks, reason.index))


def copy_numbers(frame: pd.DataFrame, key: list[str], clean_so_far: pd.Series, ascending: bool = True) -> pd.Series:
    """``row_number() over (partition by <clean so far>, key order by delivery)`` (NULL keys group together)."""
    ordered = frame.assign(_clean=clean_so_far).sort_values(LINEAGE_ORDER, ascending=ascending, kind="stable")
    return ordered.groupby(["_clean", *key], dropna=False, sort=False).cumcount().reindex(frame.index) + 1


def classify_products(raw: pd.DataFrame, rules: dict, patterns: list[re.Pattern]) -> pd.Series:
    product_id, title = clean_text(raw["product_id"]), clean_text(raw["title"])
    description, attributes = clean_text(raw["description"]), clean_text(raw["attributes"])
    price_text, updated_text = clean_text(raw["price"]), clean_text(raw["updated_at"])
    price = to_decimal(price_text)
    bad_attributes = pd.Series([isinstance(text, str) and not _is_json_object(text) for text in attributes], raw.index)
    too_long = (title.str.len() > rules["max_text_length"]) | (description.str.len() > rules["max_text_length"])
    reason = first_failure(
        [
            (superseded(raw), "superseded_delivery"),
            (product_id.isna(), "missing_product_id"),
            (title.isna(), "missing_title"),
            (is_unparsable(price_text, price), "bad_price"),
            (bad_attributes, "bad_attributes"),
            (is_unparsable(updated_text, to_timestamp(updated_text)), "bad_timestamp"),
            (price <= 0, "non_positive_price"),
            (price > rules["max_unit_price"], "absurd_price"),
            (too_long, "text_too_long"),
        ],
        raw.index,
    )
    reason = relational(reason, [(product_id.isin(service_ids(product_id, patterns)), "non_product_item")])
    keyed = raw.assign(product_id=product_id)
    from_end = copy_numbers(keyed, ["_load_id", "product_id"], reason.isna(), ascending=False)
    return reason.where(reason.notna(), np.where(from_end > 1, "duplicate_product_row", None))


def classify_orders(raw: pd.DataFrame, rules: dict, patterns: list[re.Pattern], catalogue: set[str]) -> pd.Series:
    typed = pd.DataFrame(index=raw.index)
    for column in ("order_id", "user_id", "product_id", "country"):
        typed[column] = clean_text(raw[column])
    texts = {column: clean_text(raw[column]) for column in ("line_no", "quantity", "unit_price", "ordered_at")}
    typed["line_no"] = to_integer(texts["line_no"])
    typed["quantity"] = to_integer(texts["quantity"])
    typed["unit_price"] = to_decimal(texts["unit_price"])
    typed["ordered_at"] = to_timestamp(texts["ordered_at"])
    status = clean_text(raw["status"]).str.lower()
    checks = [
        (superseded(raw), "superseded_delivery"),
        (typed["order_id"].isna(), "missing_order_id"),
        (typed["product_id"].isna(), "missing_product_id"),
        (typed["user_id"].isna(), "missing_user_id"),
        (typed["quantity"].isna(), "bad_quantity"),
        (typed["unit_price"].isna(), "bad_unit_price"),
        (is_unparsable(texts["line_no"], typed["line_no"]), "bad_line_no"),
        (status.notna() & ~status.isin(STATUSES), "bad_status"),
        *timestamp_checks(typed["ordered_at"], raw["_delivery_date"], rules),
        (typed["quantity"] == 0, "zero_quantity"),
        (typed["quantity"].abs() > rules["max_quantity"], "absurd_quantity"),
        (typed["unit_price"] <= 0, "non_positive_price"),
        (typed["unit_price"] > rules["max_unit_price"], "absurd_price"),
    ]
    reason = first_failure(checks, raw.index)
    reason = relational(
        reason,
        [
            (typed["product_id"].isin(service_ids(typed["product_id"], patterns)), "non_product_item"),
            (~typed["product_id"].isin(catalogue), "unknown_product"),
        ],
    )
    typed["currency"] = clean_text(raw["currency"]).str.upper().fillna("UNKNOWN")
    negative = (typed["quantity"] < 0).fillna(False).to_numpy(dtype=bool)
    typed["status"] = status.fillna(pd.Series(np.where(negative, "returned", "placed"), index=raw.index))
    keyed = pd.concat([typed, raw[LINEAGE_ORDER]], axis=1)
    value_columns = ["order_id", "line_no", "user_id", "product_id", "quantity", "unit_price", "ordered_at"]
    copies = copy_numbers(keyed, [*value_columns, "currency", "status", "country"], reason.isna())
    line_uses = copy_numbers(keyed, ["order_id", "line_no"], reason.isna())
    duplicates = first_failure(
        [(copies > 1, "duplicate_row"), (typed["line_no"].notna() & (line_uses > 1), "duplicate_line")], raw.index
    )
    return reason.where(reason.notna(), duplicates)


def classify_clicks(raw: pd.DataFrame, rules: dict, patterns: list[re.Pattern], catalogue: set[str]) -> pd.Series:
    ids = {column: clean_text(raw[column]) for column in ("event_id", "session_id", "user_id", "product_id")}
    event_type = clean_text(raw["event_type"]).str.lower()
    occurred_at = to_timestamp(clean_text(raw["occurred_at"]))
    reason = first_failure(
        [
            (superseded(raw), "superseded_delivery"),
            (ids["user_id"].isna(), "missing_user_id"),
            (ids["product_id"].isna(), "missing_product_id"),
            (event_type.isna() | ~event_type.isin(CLICK_EVENT_TYPES), "bad_event_type"),
            *timestamp_checks(occurred_at, raw["_delivery_date"], rules),
        ],
        raw.index,
    )
    reason = relational(
        reason,
        [
            (ids["product_id"].isin(service_ids(ids["product_id"], patterns)), "non_product_item"),
            (~ids["product_id"].isin(catalogue), "unknown_product"),
        ],
    )
    identity = "id:" + ids["event_id"]
    without_id = identity.isna()
    if without_id.any():  # concat_ws('|', ...) of the event's fields, missing ones skipped
        fields = [ids["session_id"], ids["user_id"], ids["product_id"], event_type]
        fields.append(occurred_at.dt.strftime("%Y-%m-%d %H:%M:%S"))
        parts = pd.concat([field[without_id] for field in fields], axis=1)
        identity[without_id] = "event:" + parts.apply(lambda row: "|".join(row.dropna()), axis=1)
    copies = copy_numbers(raw.assign(_identity=identity), ["_identity"], reason.isna())
    return reason.where(reason.notna(), np.where(copies > 1, "duplicate_event", None))


def classify_reviews(raw: pd.DataFrame, rules: dict, catalogue: set[str]) -> pd.Series:
    review_id, product_id = clean_text(raw["review_id"]), clean_text(raw["product_id"])
    title, body, rating_text = clean_text(raw["title"]), clean_text(raw["body"]), clean_text(raw["rating"])
    rating = to_integer(rating_text)
    bad_rating = rating_text.notna() & (rating.isna() | ~rating.between(1, 5)).fillna(True)
    too_long = (body.str.len() > rules["max_text_length"]) | (title.str.len() > rules["max_text_length"])
    reason = first_failure(
        [
            (superseded(raw), "superseded_delivery"),
            (review_id.isna(), "missing_review_id"),
            (product_id.isna(), "missing_product_id"),
            (body.isna(), "missing_body"),
            (bad_rating, "bad_rating"),
            *timestamp_checks(to_timestamp(clean_text(raw["created_at"])), raw["_delivery_date"], rules),
            (too_long, "text_too_long"),
        ],
        raw.index,
    )
    reason = relational(reason, [(~product_id.isin(catalogue), "unknown_product")])
    copies = copy_numbers(raw.assign(review_id=review_id), ["review_id"], reason.isna())
    return reason.where(reason.notna(), np.where(copies > 1, "duplicate_review_id", None))


def classify_all(raw: dict[str, pd.DataFrame], project_dir: Path) -> dict[str, pd.Series]:
    """A quarantine reason (None = clean) per raw row of every entity present in ``raw``."""
    rules, patterns = project_rules(project_dir), service_patterns(project_dir)
    reasons = {"products": classify_products(raw["products"], rules, patterns)}
    clean_products = clean_text(raw["products"]["product_id"])[reasons["products"].isna()]
    catalogue = set(clean_products.dropna())
    if "orders" in raw:
        reasons["orders"] = classify_orders(raw["orders"], rules, patterns, catalogue)
    if "clicks" in raw:
        reasons["clicks"] = classify_clicks(raw["clicks"], rules, patterns, catalogue)
    if "reviews" in raw:
        reasons["reviews"] = classify_reviews(raw["reviews"], rules, catalogue)
    return reasons


def clean_counts(reasons: dict[str, pd.Series]) -> dict[str, dict[str, int]]:
    """entity → {"clean": n, <reason>: n, ...}."""
    counts = {}
    for entity, reason in reasons.items():
        per_reason = reason.fillna("clean").value_counts()
        counts[entity] = {str(key): int(value) for key, value in sorted(per_reason.items())}
    return counts


def _is_json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False
