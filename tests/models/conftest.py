"""Fixtures for the recommender tests: implicit's checkerboard (plus cold items with text) and the real MiniLM."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pytest
from scipy import sparse

from shopflow.models.embeddings import MiniLMEncoder
from shopflow.models.interactions import InteractionMatrix

CHECKERBOARD_SIZE = 50
EMBEDDING_DIMENSIONS = 8


def parity_of(checkerboard_id: str) -> int:
    """The taste of a checkerboard user or item id: 0 = even (u00, i02, u-all-even, cold-even), 1 = odd."""
    if checkerboard_id.endswith("-even"):
        return 0
    if checkerboard_id.endswith("-odd"):
        return 1
    return int(checkerboard_id[1:]) % 2


@pytest.fixture(scope="session")
def parity():
    """``parity(id)``: 0 for the even taste, 1 for the odd one (users and items alike)."""
    return parity_of


@pytest.fixture(scope="session")
def checkerboard() -> InteractionMatrix:
    """implicit's checkerboard: user u liked item i when u and i have the same parity, except i = u (withheld).

    Two extra items, ``cold-even`` and ``cold-odd``, have text but no interactions; one extra user,
    ``u-all-even``, liked every even item (so the only unseen even item left for them is ``cold-even``).
    """
    n = CHECKERBOARD_SIZE
    pairs = [(u, i) for u in range(n) for i in range(n) if (u + i) % 2 == 0 and u != i]
    pairs += [(n, i) for i in range(0, n, 2)]
    users, items = zip(*pairs, strict=True)
    user_ids = np.array([f"u{u:02d}" for u in range(n)] + ["u-all-even"])
    item_ids = np.array([f"i{i:02d}" for i in range(n)] + ["cold-even", "cold-odd"])
    matrix = sparse.csr_matrix(
        (np.ones(len(pairs), dtype=np.float32), (users, items)), shape=(len(user_ids), len(item_ids))
    )
    return InteractionMatrix(matrix, user_ids, item_ids)


@pytest.fixture(scope="session")
def checkerboard_embeddings(checkerboard: InteractionMatrix) -> np.ndarray:
    """Unit text vectors: the even items (cold-even included) near one direction, the odd ones near another."""
    rng = np.random.default_rng(7)
    parities = np.array([parity_of(item) for item in checkerboard.item_ids])
    vectors = np.eye(EMBEDDING_DIMENSIONS, dtype=np.float32)[parities]
    vectors += 0.1 * rng.standard_normal(vectors.shape).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture(scope="session")
def minilm() -> MiniLMEncoder:
    """The real all-MiniLM-L6-v2 encoder (loads once per session, about 3 s)."""
    return MiniLMEncoder()


MARTS_SQL = """
create schema if not exists marts;
create or replace table marts.fct_clicks (user_id varchar, product_id varchar, event_type varchar, event_date date);
create or replace table marts.fct_order_lines (user_id varchar, product_id varchar, quantity integer, order_date date);
create or replace table marts.dim_products (
    product_id varchar, title varchar, category varchar, brand varchar, attributes varchar, description varchar,
    first_listed_date date
);
"""


@pytest.fixture(scope="session")
def write_marts():
    """``write_marts(path, clicks, orders, products)``: a DuckDB file with the three marts the recommender reads.

    ``clicks``: (user, product, event_type, day); ``orders``: (user, product, quantity, day);
    ``products``: (product_id, title, category, brand, attributes, description, first_listed_date).
    """

    def write(path: Path, clicks: list[tuple], orders: list[tuple], products: list[tuple]) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        with duckdb.connect(str(path)) as con:
            con.execute(MARTS_SQL)
            for table, rows, width in (
                ("fct_clicks", clicks, 4),
                ("fct_order_lines", orders, 4),
                ("dim_products", products, 7),
            ):
                if rows:
                    placeholders = ", ".join(["?"] * width)
                    con.executemany(f"insert into marts.{table} values ({placeholders})", rows)
        return path

    return write
