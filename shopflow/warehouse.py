"""DuckDB access: one place that opens the warehouse with the project's resource limits."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from shopflow.settings import Settings


def sql_literal(value: str | Path) -> str:
    """Quote a value as a SQL string literal (for table-function arguments such as file paths)."""
    return "'" + str(value).replace("'", "''") + "'"


def quote_ident(name: str) -> str:
    """Quote an identifier so that any header text (quotes, spaces, SQL keywords) is safe in SQL."""
    return '"' + name.replace('"', '""') + '"'


@contextmanager
def connect(settings: Settings, path: Path | None = None, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open ``path`` (default: the warehouse) with the configured threads and memory cap; always closes."""
    path = path or settings.warehouse_path
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(
        str(path),
        read_only=read_only,
        config={"threads": settings.duckdb_threads, "memory_limit": settings.duckdb_memory_limit},
    )
    try:
        yield con
    finally:
        con.close()


def table_fingerprints(con: duckdb.DuckDBPyConnection, schemas: tuple[str, ...]) -> dict[str, dict[str, int | str]]:
    """Row count and an order-independent content hash for every table in ``schemas``.

    Two builds of the same night must give identical fingerprints; the hash sums per-row hashes so row order
    does not matter.
    """
    tables = con.execute(
        "select table_schema, table_name from information_schema.tables "
        "where table_schema in (select unnest(?)) and table_type = 'BASE TABLE' order by 1, 2",
        [list(schemas)],
    ).fetchall()
    result: dict[str, dict[str, int | str]] = {}
    for schema, table in tables:
        rows, content = con.execute(
            f"select count(*), coalesce(sum(hash(t.*)), 0)::varchar from {quote_ident(schema)}.{quote_ident(table)} t"
        ).fetchall()[0]
        result[f"{schema}.{table}"] = {"rows": rows, "hash": content}
    return result
