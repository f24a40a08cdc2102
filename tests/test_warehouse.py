"""Warehouse connections: the configured threads and memory cap, or a smaller cap for one connection."""

from __future__ import annotations

from shopflow.settings import Settings
from shopflow.warehouse import connect


def _memory_limit(con) -> str:
    return con.execute("select current_setting('memory_limit')").fetchone()[0]


def test_connections_take_the_configured_memory_cap_or_the_one_asked_for(settings: Settings) -> None:
    capped = settings.model_copy(update={"duckdb_memory_limit": "3GB", "duckdb_threads": 1})
    with connect(capped) as con:
        configured = _memory_limit(con)
        assert con.execute("select current_setting('threads')").fetchone()[0] == 1
    with connect(capped, memory_limit="256MB") as con:
        smaller = _memory_limit(con)
    assert configured.startswith("2.7") and configured.endswith("GiB")  # 3 GB as DuckDB prints it
    assert smaller.startswith("244") and smaller.endswith("MiB")
