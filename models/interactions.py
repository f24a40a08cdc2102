"""Implicit feedback from the event-level marts: daily event counts, cut into windows, weighted like dbt.

The recommender never reads ``marts.fct_interactions`` (one all-time row per user × product): a temporal split
needs the same weights over arbitrary day windows. So the events are read once at day grain
(:class:`EventLog`: views, net carts, units bought and returned per user × product × day) and any window
``[start, end)`` becomes an :class:`InteractionMatrix` with exactly dbt's formula::

    weight = view · n_views + add_to_cart · max(n_add_to_cart − n_remove_from_cart, 0)
             + purchase · ln(1 + max(units_bought − units_returned, 0))

where the counts are summed inside the window (a return nets only purchases of the same window) and the three
weights are the ``interaction_weights`` var of ``dbt_project/dbt_project.yml``. Pairs with weight 0 (fully
returned purchases, carts removed again) are not interactions.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import yaml
from scipy import sparse

EVENT_COUNT_COLUMNS = ("n_views", "n_add_to_cart", "n_remove_from_cart", "units_bought", "units_returned")

DAILY_EVENTS_SQL = """
with

clicks as (
    select
        user_id,
        product_id,
        event_date as day,
        count(*) filter (where event_type = 'view') as n_views,
        count(*) filter (where event_type = 'add_to_cart') as n_add_to_cart,
        count(*) filter (where event_type = 'remove_from_cart') as n_remove_from_cart
    from marts.fct_clicks
    where event_date <= $until
    group by all
),

orders as (
    select
        user_id,
        product_id,
        order_date as day,
        coalesce(sum(quantity) filter (where quantity > 0), 0) as units_bought,
        coalesce(-sum(quantity) filter (where quantity < 0), 0) as units_returned
    from marts.fct_order_lines
    where order_date <= $until
    group by all
)

select
    user_id,
    product_id,
    day,
    coalesce(n_views, 0)::integer as n_views,
    coalesce(n_add_to_cart, 0)::integer as n_add_to_cart,
    coalesce(n_remove_from_cart, 0)::integer as n_remove_from_cart,
    coalesce(units_bought, 0)::bigint as units_bought,
    coalesce(units_returned, 0)::bigint as units_returned
from clicks
full outer join orders using (user_id, product_id, day)
"""


@dataclass(frozen=True)
class InteractionWeights:
    """Confidence per event: per view, per net add-to-cart, and per ln(1 + net units) purchased."""

    view: float
    add_to_cart: float
    purchase: float

    @classmethod
    def from_dbt_project(cls, project_dir: Path) -> InteractionWeights:
        """The ``interaction_weights`` var of the dbt project, so the model and ``fct_interactions`` agree."""
        project = yaml.safe_load((project_dir / "dbt_project.yml").read_text())
        return cls(**{key: float(value) for key, value in project["vars"]["interaction_weights"].items()})


@dataclass(frozen=True)
class InteractionMatrix:
    """A user × item confidence matrix (CSR, rows = users) with the ids of its rows and columns.

    The recommender's one input type (cf. Dagster's ``IndexedCooMatrix``): ``user_items[r, c]`` is the
    confidence that user ``user_ids[r]`` likes item ``item_ids[c]``; zero means no interaction.
    ``days_since_last`` (same sparsity pattern, when known) holds, per pair, the days from its last interaction
    to the end of the window (1 = the window's last day), for models that weigh recent activity.
    """

    user_items: sparse.csr_matrix
    user_ids: np.ndarray
    item_ids: np.ndarray
    days_since_last: sparse.csr_matrix | None = None

    def __post_init__(self) -> None:
        if self.user_items.shape != (len(self.user_ids), len(self.item_ids)):
            raise ValueError(
                f"matrix shape {self.user_items.shape} does not match {len(self.user_ids)} users × "
                f"{len(self.item_ids)} items"
            )
        if self.days_since_last is not None and self.days_since_last.nnz != self.user_items.nnz:
            raise ValueError("days_since_last must have one value per interaction")

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def user_rows(self, user_ids: np.ndarray) -> np.ndarray:
        """Row of each id in ``user_ids`` (−1 where the user is not in the matrix)."""
        return positions(self.user_ids, user_ids)

    def item_columns(self, item_ids: np.ndarray) -> np.ndarray:
        """Column of each id in ``item_ids`` (−1 where the item is not in the matrix)."""
        return positions(self.item_ids, item_ids)

    def item_user_counts(self, within_days: int | None = None) -> np.ndarray:
        """Number of users who interacted with each item (in the window's last ``within_days`` days when given)."""
        if within_days is None:
            return np.diff(self.user_items.tocsc().indptr)
        if self.days_since_last is None:
            raise ValueError("this matrix has no interaction dates (days_since_last)")
        recent = self.days_since_last.copy()
        recent.data = (recent.data <= within_days).astype(np.float32)
        recent.eliminate_zeros()
        return np.diff(recent.tocsc().indptr)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, item_ids: np.ndarray) -> InteractionMatrix:
        """From (user_id, product_id, weight) rows over the item vocabulary ``item_ids``; users sorted by id."""
        user_ids, user_rows = np.unique(frame["user_id"].to_numpy(dtype=str), return_inverse=True)
        columns = positions(item_ids, frame["product_id"].to_numpy(dtype=str))
        if (columns < 0).any():
            raise ValueError("interactions with products outside the item vocabulary")
        matrix = sparse.csr_matrix(
            (frame["weight"].to_numpy(dtype=np.float32), (user_rows, columns)), shape=(len(user_ids), len(item_ids))
        )
        matrix.sum_duplicates()
        return cls(matrix, user_ids, np.asarray(item_ids, dtype=str))


@dataclass(frozen=True)
class EventLog:
    """Event counts per user × product × day, id-encoded, from which any day window's interactions are cut.

    ``item_ids`` is the item vocabulary of every matrix cut from the log (the catalogue, so products nobody has
    touched yet still get a column); ``user_codes``/``item_codes`` index ``user_ids``/``item_ids``.
    """

    user_ids: np.ndarray
    item_ids: np.ndarray
    user_codes: np.ndarray  # int32, like item_codes: 4 bytes a row (35M rows at 50M events)
    item_codes: np.ndarray
    days: np.ndarray  # datetime64[D]
    counts: dict[str, np.ndarray]  # EVENT_COUNT_COLUMNS → per-row counts, float32 (whole numbers, exact below 2**24)
    weights: InteractionWeights

    @property
    def first_day(self) -> date:
        return self.days.min().astype(date)

    @property
    def last_day(self) -> date:
        return self.days.max().astype(date)

    @classmethod
    def from_daily_frame(cls, daily: pd.DataFrame, item_ids: np.ndarray, weights: InteractionWeights) -> EventLog:
        """From rows of (user_id, product_id, day, *EVENT_COUNT_COLUMNS); ``item_ids`` must cover every product."""
        if daily.empty:
            raise ValueError("no events: the recommender needs at least one click or order line")
        user_ids, user_codes = _sorted_codes(daily["user_id"])
        if (user_codes < 0).any():
            raise ValueError("events without a user_id")
        item_ids = np.asarray(item_ids, dtype=str)
        item_codes = _positions_in(item_ids, daily["product_id"])
        if (item_codes < 0).any():
            raise ValueError("events for products missing from the item vocabulary")
        return cls(
            user_ids=user_ids,
            item_ids=item_ids,
            user_codes=user_codes.astype(np.int32),
            item_codes=item_codes.astype(np.int32),
            days=pd.to_datetime(daily["day"]).to_numpy().astype("datetime64[D]"),
            counts={name: daily[name].to_numpy(dtype=np.float32) for name in EVENT_COUNT_COLUMNS},
            weights=weights,
        )

    def sample_users(self, max_users: int, seed: int = 0) -> EventLog:
        """The events of at most ``max_users`` users drawn uniformly without replacement (itself when it has fewer);
        the item vocabulary is unchanged."""
        if len(self.user_ids) <= max_users:
            return self
        kept = np.zeros(len(self.user_ids), dtype=bool)
        kept[np.random.default_rng(seed).choice(len(self.user_ids), max_users, replace=False)] = True
        rows = kept[self.user_codes]
        new_codes = np.cumsum(kept) - 1
        return replace(
            self,
            user_ids=self.user_ids[kept],
            user_codes=new_codes[self.user_codes[rows]].astype(np.int32),
            item_codes=self.item_codes[rows],
            days=self.days[rows],
            counts={name: values[rows] for name, values in self.counts.items()},
        )

    def window(self, start: date | None = None, end: date | None = None) -> InteractionMatrix:
        """Interactions of the days in ``[start, end)`` (open bounds when None); rows: users with any weight."""
        end_day = np.datetime64(end, "D") if end is not None else self.days.max() + np.timedelta64(1, "D")
        in_window = self.days < end_day
        if start is not None:
            in_window &= self.days >= np.datetime64(start, "D")
        if in_window.all():  # the whole log (a refit night): no masked copies of every column
            in_window = slice(None)
        n_items = len(self.item_ids)
        pair_keys = self.user_codes[in_window].astype(np.int64) * n_items + self.item_codes[in_window]
        pairs, pair_of_row = np.unique(pair_keys, return_inverse=True)  # sorted: by user code, then item code
        last_day = np.full(len(pairs), np.iinfo(np.int64).min)
        np.maximum.at(last_day, pair_of_row, self.days[in_window].astype(np.int64))
        totals = {
            name: np.bincount(pair_of_row, weights=values[in_window], minlength=len(pairs))
            for name, values in self.counts.items()
        }
        weight = (
            self.weights.view * totals["n_views"]
            + self.weights.add_to_cart * np.maximum(totals["n_add_to_cart"] - totals["n_remove_from_cart"], 0)
            + self.weights.purchase * np.log1p(np.maximum(totals["units_bought"] - totals["units_returned"], 0))
        )
        positive = weight > 0
        user_codes, item_codes = np.divmod(pairs[positive], n_items)
        # the sorted pairs are the CSR layout already: a row per run of one user code, columns ascending within it
        row_starts = np.flatnonzero(np.diff(user_codes, prepend=-1))
        indptr = np.append(row_starts, len(user_codes))
        shape = (len(row_starts), n_items)
        days_since = end_day.astype(np.int64) - last_day[positive]
        matrix, days_since_last = (
            sparse.csr_matrix((values.astype(np.float32), item_codes.astype(np.int32), indptr), shape=shape)
            for values in (weight[positive], days_since)
        )
        return InteractionMatrix(matrix, self.user_ids[user_codes[row_starts]], self.item_ids, days_since_last)


def read_daily_events(con: duckdb.DuckDBPyConnection, until: date) -> pd.DataFrame:
    """Clicks and order lines up to and including ``until``, summed per user × product × day.

    Ids arrive as categoricals (through Arrow): one Python string per distinct id, not per row. At 50M events
    (35M rows) plain object columns made this read peak at 9.8 GiB.
    """
    table = con.execute(DAILY_EVENTS_SQL, {"until": until}).to_arrow_table()
    return table.to_pandas(strings_to_categorical=True, date_as_object=False)


def align_rows(matrix: InteractionMatrix, user_ids: np.ndarray) -> sparse.csr_matrix:
    """``matrix``'s rows for ``user_ids`` (same item vocabulary); all-zero rows for users it does not have."""
    rows = matrix.user_rows(user_ids)
    known = rows >= 0
    selector = sparse.csr_matrix(
        (np.ones(known.sum(), dtype=np.float32), (np.flatnonzero(known), rows[known])),
        shape=(len(user_ids), matrix.n_users),
    )
    return (selector @ matrix.user_items).tocsr()


def _sorted_codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values, sorted, as str, and each row's index among them (−1 for missing values)."""
    if isinstance(values.dtype, pd.CategoricalDtype):  # sort the used categories, not the rows
        codes = values.cat.codes.to_numpy()
        used = np.zeros(len(values.cat.categories) + 1, dtype=bool)  # + the code −1 (missing), last
        used[codes] = True
        used_codes = np.flatnonzero(used[:-1])  # pandas' remove_unused_categories took 1.5 s at 7M rows
        categories = np.asarray(values.cat.categories[used_codes], dtype=str)
        order = np.argsort(categories, kind="stable")
        rank = np.full(len(used), -1, dtype=np.int64)  # code −1 (missing) keeps −1
        rank[used_codes[order]] = np.arange(len(order))
        return categories[order], rank[codes]
    codes, uniques = pd.factorize(values, sort=True)  # hashing: ~10x np.unique on millions of strings
    return np.asarray(uniques, dtype=str), codes.astype(np.int64)


def _positions_in(vocabulary: np.ndarray, values: pd.Series) -> np.ndarray:
    """:func:`positions` of a column's values; a categorical column is looked up once per category."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        per_category = np.append(positions(vocabulary, values.cat.categories.to_numpy()), -1)
        return per_category[values.cat.codes.to_numpy()]
    return positions(vocabulary, values.to_numpy())


def positions(vocabulary: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Index of each of ``ids`` in ``vocabulary`` (any order; −1 when absent; the first of repeated entries)."""
    index = pd.Index(np.asarray(vocabulary, dtype=str))
    first = ~index.duplicated()
    codes = index[first].get_indexer(np.asarray(ids))  # hashing, not a sort of every id
    first_positions = np.append(np.flatnonzero(first), -1)  # code −1 (absent) picks the trailing −1
    return first_positions[codes].astype(np.int64)
