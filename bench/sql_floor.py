"""The single-SQL floor: the dbt project's own compiled models run as one plain DuckDB script, without dbt.

The floor is the least work that produces the same tables: each model's compiled SQL (from the ``manifest.json``
of a ``dbt build`` of the same night, so the run date and vars are those the night used) executed in dependency
order as ``create view`` / ``create table`` in one connection: no dbt process, no parsing, no tests, no
artifacts. Because it is the same SQL, it gives the same clean/quarantine counts by construction; the benchmarks
still check them. The script is written next to the results for inspection (``floor.sql``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

from shopflow.contract import ENTITIES
from shopflow.warehouse import sql_literal

#: Model layers of the cleaning proper (typed + classified rows); marts and quarantine tables build on them.
CLEANING_LAYERS = ("staging", "intermediate")


@dataclass(frozen=True)
class FloorStatement:
    unique_id: str
    layer: str  # the model's folder: staging, intermediate, marts, quarantine (or "seed")
    sql: str


def floor_statements(manifest_path: Path, project_dir: Path) -> list[FloorStatement]:
    """Seeds and models of the manifest as DuckDB DDL, in dependency order (tests and unit tests left out)."""
    manifest = json.loads(manifest_path.read_text())
    nodes = {uid: node for uid, node in manifest["nodes"].items() if node["resource_type"] in ("model", "seed")}
    ordered: list[str] = []
    visiting: set[str] = set()

    def visit(uid: str) -> None:
        if uid in ordered or uid not in nodes:
            return
        if uid in visiting:
            raise ValueError(f"dependency cycle at {uid}")
        visiting.add(uid)
        for parent in nodes[uid]["depends_on"].get("nodes", []):
            visit(parent)
        visiting.discard(uid)
        ordered.append(uid)

    for uid in sorted(nodes):
        visit(uid)
    statements = []
    for uid in ordered:
        node = nodes[uid]
        relation = node["relation_name"]
        if node["resource_type"] == "seed":
            seed_file = project_dir / node["original_file_path"]
            reader = f"read_csv({sql_literal(seed_file)}, all_varchar = true)"
            sql = f"create or replace table {relation} as select * from {reader}"
            statements.append(FloorStatement(uid, "seed", sql))
            continue
        kind = "view" if node["config"]["materialized"] == "view" else "table"
        layer = node["fqn"][1] if len(node["fqn"]) > 2 else "models"
        statements.append(
            FloorStatement(uid, layer, f"create or replace {kind} {relation} as\n{node['compiled_code']}")
        )
    return statements


def _schemas(statements: list[FloorStatement]) -> list[str]:
    """``"catalog"."schema"`` of every relation the statements create."""
    return sorted({s.sql.split(" as", 1)[0].split()[-1].rsplit(".", 1)[0] for s in statements})


def floor_script(statements: list[FloorStatement]) -> str:
    header = [f"create schema if not exists {schema};" for schema in _schemas(statements)]
    return "\n".join(header + [f"-- {s.unique_id}\n{s.sql};" for s in statements]) + "\n"


def run_floor(con: duckdb.DuckDBPyConnection, statements: list[FloorStatement]) -> dict[str, float]:
    """Execute the floor in ``con``; returns seconds per layer (seed, staging, intermediate, marts, quarantine)."""
    for schema in _schemas(statements):
        con.execute(f"create schema if not exists {schema}")
    seconds: dict[str, float] = {}
    for statement in statements:
        started = time.perf_counter()
        con.execute(statement.sql)
        seconds[statement.layer] = seconds.get(statement.layer, 0.0) + time.perf_counter() - started
    return {layer: round(value, 3) for layer, value in seconds.items()}


def load_landing_bare(con: duckdb.DuckDBPyConnection, landing_dir: Path, until: str) -> dict[str, int]:
    """Every landing CSV up to day ``until`` into ``raw.<entity>`` with the ingest's lineage columns, one
    ``read_csv`` per entity (no hashing, no per-file checks, no load audit): the bare-DuckDB ingest."""
    con.execute("create schema if not exists raw")
    rows = {}
    for entity in ENTITIES.values():
        files = sorted(path for path in (landing_dir / entity.name).glob("*.csv*") if path.name[:10] <= until)
        if not files:
            continue
        file_list = "[" + ", ".join(sql_literal(path) for path in files) + "]"
        columns = ", ".join(f"cast({name} as varchar) as {name}" for name in entity.columns)
        con.execute(
            f"""
            create or replace table raw.{entity.name} as
            select {columns},
                   null::json as _extra,
                   dense_rank() over (order by filename)::integer as _load_id,
                   filename as _source_file,
                   row_number() over (partition by filename) as _row_number,
                   cast(regexp_extract(filename, '(\\d{{4}}-\\d{{2}}-\\d{{2}})', 1) as date) as _delivery_date
            from read_csv({file_list}, header = true, all_varchar = true, union_by_name = true, filename = true)
            """
        )
        rows[entity.name] = con.execute(f"select count(*) from raw.{entity.name}").fetchall()[0][0]
    return rows
