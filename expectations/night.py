"""Read everything the audit validates for one night from the warehouse, as pandas DataFrames.

Great Expectations cannot validate DuckDB tables through SQLAlchemy here (shared/notes/stack.md G8), so the
audit reads small DataFrames with one read-only connection and validates them after closing it:

- tonight's raw deliveries (rows with ``_delivery_date = run_date``, newest load of each entity), with blank
  text as missing, enums lower-cased and typed copies of the typed columns (the same casts as cleaning);
- the delivered volumes of earlier days, from ``audit.loads``;
- the marts (facts: the rows delivered tonight; dimensions: whole), the row accounting with an independent count
  of the raw tables, and tonight's quarantined rows per entity and reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb
import pandas as pd

from shopflow.contract import ENTITIES
from shopflow.settings import Settings
from shopflow.warehouse import connect, quote_ident

#: Typed copies of raw text columns, named ``parsed_<column>`` (NULL where the value does not parse): the SQL type
#: cleaning casts each column to, or JSON_OBJECT for text that is a JSON object.
JSON_OBJECT = "json object"
PARSED_TYPES = {
    "orders": {"quantity": "integer", "unit_price": "decimal(18, 3)", "ordered_at": "timestamp"},
    "clicks": {"occurred_at": "timestamp"},
    "products": {"price": "decimal(18, 3)", "updated_at": "timestamp", "attributes": JSON_OBJECT},
    "reviews": {"created_at": "timestamp"},
}
#: Enum columns that cleaning compares lower-cased.
LOWER_CASED = {"status", "event_type"}

#: Columns of the marts the mart suites check; facts are read for tonight's deliveries only.
MART_COLUMNS = {
    "fct_order_lines": "order_line_key, order_id, user_id, product_id, quantity, unit_price::double as unit_price, "
    "ordered_at",
    "fct_clicks": "click_key, user_id, product_id, event_type, occurred_at",
    "fct_reviews": "review_id, product_id, user_id, rating, body, created_at",
    "dim_products": "product_id, title, price::double as price, content_hash",
    "dim_users": "user_id",
    "daily_kpis": "kpi_date, conversion_rate",
}
FACT_TABLES = ("fct_order_lines", "fct_clicks", "fct_reviews")

_NEWEST_LOADS = """
    select entity, delivery_date, load_id, rows
    from audit.loads
    where delivery_date <= ?
    qualify row_number() over (partition by entity, delivery_date order by version desc) = 1
"""

_QUARANTINED_TONIGHT = """
    with newest_loads as (
        {newest_loads}
    ),
    tonight as (
        select * from newest_loads where delivery_date = ?
    ),
    quarantined as (
        {quarantine_union}
    )
    select tonight.entity, quarantined.quarantine_reason, count(*) as quarantined_rows,
           any_value(tonight.rows) as delivered_rows
    from tonight
    inner join quarantined on tonight.entity = quarantined.entity and tonight.load_id = quarantined.load_id
    group by all
    order by 1, 2
"""

_ROW_ACCOUNTING = """
    with accounting as (
        select * from quarantine.row_accounting
    ),
    raw_tables as (
        {raw_counts}
    )
    select
        coalesce(accounting.entity, raw_tables.entity) as entity,
        raw_tables.raw_table_rows,
        accounting.clean_rows + accounting.quarantined_rows as clean_plus_quarantined_rows
    from accounting
    full outer join raw_tables using (entity)
    order by 1
"""


@dataclass
class Deliveries:
    """Tonight's raw deliveries and the sizes of the earlier ones (from the raw tables and ``audit.loads`` only)."""

    run_date: date
    raw: dict[str, pd.DataFrame]  # entity -> tonight's newest delivery (entities delivered tonight only)
    load_ids: dict[str, int]  # entity -> the load of tonight's newest delivery
    delivered_rows: dict[str, int | None]  # entity delivered on or before tonight -> rows tonight (None: none)
    earlier_rows: dict[str, list[int]]  # entity -> rows of each earlier delivery day, oldest first
    previously_filled: dict[str, dict[str, float]]  # entity -> optional column -> filled share, previous delivery


@dataclass
class NightData:
    """What the suites validate for one night; every frame is already in memory (no open connection)."""

    deliveries: Deliveries
    known_reviewers: list[str]  # tonight's reviewer ids with a clean order or click so far
    marts: dict[str, pd.DataFrame]  # mart table -> its frame (facts: tonight's deliveries)
    row_accounting: pd.DataFrame  # entity, raw_table_rows, clean_plus_quarantined_rows
    quarantined_by_reason: pd.DataFrame  # entity, quarantine_reason, quarantined_rows, delivered_rows, share
    quarantined_by_entity: pd.DataFrame  # entity, quarantined_rows, delivered_rows, share


def read_night(settings: Settings, run_date: date) -> NightData:
    """Read the night's frames with one read-only connection, closed before returning."""
    with connect(settings, read_only=True) as con:
        deliveries = read_deliveries(con, run_date)
        by_reason = _quarantined_tonight(con, run_date)
        return NightData(
            deliveries=deliveries,
            known_reviewers=_known_reviewers(con, deliveries.load_ids.get("reviews")),
            marts={table: _mart(con, table, run_date) for table in MART_COLUMNS},
            row_accounting=_row_accounting(con),
            quarantined_by_reason=by_reason,
            quarantined_by_entity=_per_entity(by_reason, deliveries),
        )


def read_deliveries(con: duckdb.DuckDBPyConnection, run_date: date) -> Deliveries:
    """Tonight's newest delivery of each entity, and the newest-version row counts of every earlier day."""
    loads = con.execute(_NEWEST_LOADS + " order by entity, delivery_date", [run_date]).df()
    tonight = loads[loads["delivery_date"].dt.date == run_date].set_index("entity")
    earlier = loads[loads["delivery_date"].dt.date < run_date].groupby("entity")
    load_ids = {entity: int(load_id) for entity, load_id in tonight["load_id"].items()}
    return Deliveries(
        run_date=run_date,
        raw={entity: _raw_delivery(con, entity, load_id) for entity, load_id in load_ids.items()},
        load_ids=load_ids,
        delivered_rows={
            entity: int(tonight.loc[entity, "rows"]) if entity in load_ids else None
            for entity in loads["entity"].unique()
        },
        earlier_rows={entity: group["rows"].tolist() for entity, group in earlier},
        previously_filled={
            entity: _filled_shares(con, entity, int(group["load_id"].iloc[-1])) for entity, group in earlier
        },
    )


def _raw_delivery(con: duckdb.DuckDBPyConnection, entity: str, load_id: int) -> pd.DataFrame:
    """One load of ``raw.<entity>``: blank text as missing, enums lower-cased, plus ``parsed_<column>`` copies."""
    selected = [f"{_text(column)} as {quote_ident(column)}" for column in ENTITIES[entity].columns]
    selected += [
        f"{_parsed(column, sql_type)} as {quote_ident('parsed_' + column)}"
        for column, sql_type in PARSED_TYPES[entity].items()
    ]
    selected += ["_extra", "_row_number"]
    frame = con.execute(
        f"select {', '.join(selected)} from raw.{entity} where _load_id = ? order by _row_number", [load_id]
    ).df()
    decimals = [f"parsed_{c}" for c, sql_type in PARSED_TYPES[entity].items() if sql_type.startswith("decimal")]
    return frame.astype(dict.fromkeys(decimals, "float64"))


def _text(column: str) -> str:
    """A delivered value as cleaning reads it: trimmed, blank as NULL, enums lower-cased."""
    trimmed = f"nullif(trim({quote_ident(column)}), '')"
    return f"lower({trimmed})" if column in LOWER_CASED else trimmed


def _parsed(column: str, sql_type: str) -> str:
    if sql_type == JSON_OBJECT:
        return f"case when json_type(try_cast({_text(column)} as json)) = 'OBJECT' then {_text(column)} end"
    return f"try_cast({_text(column)} as {sql_type})"


def _filled_shares(con: duckdb.DuckDBPyConnection, entity: str, load_id: int) -> dict[str, float]:
    """Share of the rows of one load (0–1) that have a value, per optional column."""
    optional = ENTITIES[entity].optional
    shares = con.execute(
        f"select {', '.join(f'count({_text(column)}) / count(*)' for column in optional)} "
        f"from raw.{entity} where _load_id = ?",
        [load_id],
    ).fetchall()[0]
    return {column: share or 0.0 for column, share in zip(optional, shares, strict=True)}


def _known_reviewers(con: duckdb.DuckDBPyConnection, reviews_load_id: int | None) -> list[str]:
    if reviews_load_id is None:
        return []
    rows = con.execute(
        "select distinct trim(user_id) from raw.reviews where _load_id = ? and trim(user_id) in "
        "(select user_id from marts.dim_users where n_order_lines > 0 or n_click_events > 0) order by 1",
        [int(reviews_load_id)],
    ).fetchall()
    return [user_id for (user_id,) in rows]


def _mart(con: duckdb.DuckDBPyConnection, table: str, run_date: date) -> pd.DataFrame:
    tonight_only = " where delivery_date = ?" if table in FACT_TABLES else ""
    return con.execute(
        f"select {MART_COLUMNS[table]} from marts.{table}{tonight_only}", [run_date] if tonight_only else []
    ).df()


def _row_accounting(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """row_accounting's clean + quarantined rows next to a count of the raw tables in the same scope (the rows
    delivered up to the night the marts were built for)."""
    raw_counts = "\nunion all\n".join(
        f"select '{entity}' as entity, count(*) as raw_table_rows from raw.{entity} "
        "where _delivery_date <= (select max(run_date) from quarantine.row_accounting)"
        for entity in ENTITIES
    )
    return con.execute(_ROW_ACCOUNTING.format(raw_counts=raw_counts)).df()


def _quarantined_tonight(con: duckdb.DuckDBPyConnection, run_date: date) -> pd.DataFrame:
    """Quarantined rows of tonight's newest deliveries per entity and reason, with their share of the delivery."""
    quarantine_union = "\nunion all\n".join(
        f"select entity, load_id, quarantine_reason from quarantine.quarantine_{entity}" for entity in ENTITIES
    )
    frame = con.execute(
        _QUARANTINED_TONIGHT.format(newest_loads=_NEWEST_LOADS, quarantine_union=quarantine_union),
        [run_date, run_date],
    ).df()
    return frame.assign(share=(frame["quarantined_rows"] / frame["delivered_rows"]).round(4))


def _per_entity(by_reason: pd.DataFrame, deliveries: Deliveries) -> pd.DataFrame:
    """Quarantined rows per entity delivered tonight (zero when cleaning kept every row)."""
    quarantined = by_reason.groupby("entity")["quarantined_rows"].sum()
    entities = list(deliveries.load_ids)
    frame = pd.DataFrame(
        {
            "entity": entities,
            "quarantined_rows": [int(quarantined.get(entity, 0)) for entity in entities],
            "delivered_rows": [deliveries.delivered_rows[entity] for entity in entities],
        }
    )
    share = frame["quarantined_rows"] / frame["delivered_rows"].where(frame["delivered_rows"] > 0)
    return frame.assign(share=share.round(4))
