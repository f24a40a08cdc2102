"""The product catalogue as the recommender sees it: the item vocabulary and one text per product."""

from __future__ import annotations

import json

import duckdb
import numpy as np
import pandas as pd

CATALOGUE_SQL = """
select product_id, title, category, brand, attributes, description, first_listed_date
from marts.dim_products
order by product_id
"""


def read_catalogue(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Every product of ``marts.dim_products`` (latest clean version), sorted by id: the item vocabulary."""
    return con.execute(CATALOGUE_SQL).df()


def product_text(
    title: str,
    category: str | None = None,
    brand: str | None = None,
    attributes: str | None = None,
    description: str | None = None,
) -> str:
    """The text a product is embedded from: title | category | brand | attributes | description (when present).

    ``attributes`` is the catalogue's JSON object text, written as ``key: value`` pairs (verbatim if not JSON).
    """
    parts = [title, category, brand, _attribute_text(attributes), description]
    return " | ".join(part.strip() for part in parts if isinstance(part, str) and part.strip())


def product_texts(catalogue: pd.DataFrame) -> np.ndarray:
    """:func:`product_text` for every row of a catalogue frame, in its row order."""
    columns = ("title", "category", "brand", "attributes", "description")
    frame = catalogue.reindex(columns=columns)
    rows = frame.astype(object).where(frame.notna(), None)
    return np.array([product_text(*row) for row in rows.itertuples(index=False, name=None)], dtype=object)


def _attribute_text(attributes: str | None) -> str | None:
    if not isinstance(attributes, str) or not attributes.strip():
        return None
    try:
        facts = json.loads(attributes)
    except json.JSONDecodeError:
        return attributes
    if not isinstance(facts, dict):
        return attributes
    return ", ".join(f"{key.replace('_', ' ')}: {value}" for key, value in facts.items() if value is not None)
