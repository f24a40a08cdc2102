"""Warehouse connections: the configured threads and memory cap, or a smaller cap for one connection."""

from __future__ import annotations

from datetime import date

import pandas as pd

from shopflow.settings import Settings
from shopflow.warehouse import connect, register_frame


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


def test_a_registered_frame_reads_back_with_its_values_and_nulls(settings: Settings) -> None:
    frame = pd.DataFrame(
        {
            "user_id": ["u1", "u2", None],
            "rank": [1, 2, 3],
            "flagged": [True, False, None],
            "run_date": [date(2026, 3, 1)] * 3,
        }
    )
    with connect(settings) as con:
        register_frame(con, "incoming_rows", frame)
        rows = con.execute("select user_id, rank, flagged, run_date from incoming_rows order by rank").fetchall()
    assert rows == [
        ("u1", 1, True, date(2026, 3, 1)),
        ("u2", 2, False, date(2026, 3, 1)),
        (None, 3, None, date(2026, 3, 1)),
    ]
