"""Publish the analysts' read-only snapshot: marts, quarantine and audit copied into a new file, renamed into place.

Analysts never open the live warehouse (DuckDB allows one writer and no readers while it writes). The snapshot is
written beside the old one and swapped in with an atomic rename, so a reader sees the previous snapshot or the new
one, never half of either; a reader holding the old file keeps reading it undisturbed.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, date, datetime

from shopflow.settings import Settings
from shopflow.warehouse import connect, list_tables, quote_ident, sql_literal, table_fingerprints

log = logging.getLogger(__name__)

PUBLISHED_SCHEMAS = ("marts", "quarantine", "audit")  # audit: loads, refusals, validation results


@dataclass(frozen=True)
class PublishResult:
    path: str
    run_date: date
    tables: dict[str, dict[str, int | str]]  # "schema.table" -> {"rows", "hash"}

    def to_dict(self) -> dict:
        return {"path": self.path, "run_date": self.run_date.isoformat(), "tables": self.tables}


def publish_snapshot(settings: Settings, run_date: date, dbt_invocation_id: str | None = None) -> PublishResult:
    """Copy the published schemas of the warehouse into ``analytics.duckdb`` atomically; returns what was published."""
    target = settings.analytics_path
    staging_file = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    staging_file.unlink(missing_ok=True)
    try:
        with connect(settings, path=staging_file, memory_limit=settings.publish_memory_limit) as con:
            con.execute(f"attach {sql_literal(settings.warehouse_path)} as warehouse (read_only)")
            tables = list_tables(con, PUBLISHED_SCHEMAS, catalog="warehouse")
            if not tables:
                raise RuntimeError(f"nothing to publish: no tables in {PUBLISHED_SCHEMAS} of {settings.warehouse_path}")
            for schema in sorted({schema for schema, _ in tables}):
                con.execute(f"create schema {quote_ident(schema)}")
            for schema, table in tables:
                name = f"{quote_ident(schema)}.{quote_ident(table)}"
                con.execute(f"create table {name} as select * from warehouse.{name}")
            con.execute("detach warehouse")
            fingerprints = table_fingerprints(con, PUBLISHED_SCHEMAS)
            con.execute(
                "create table main.snapshot_info as select ? as run_date, ? as published_at, "
                "? as dbt_invocation_id, ? as tables",
                [
                    run_date,
                    datetime.now(UTC).replace(tzinfo=None),
                    dbt_invocation_id,
                    json.dumps(fingerprints),
                ],
            )
            con.execute("checkpoint")
        os.replace(staging_file, target)
    finally:
        staging_file.unlink(missing_ok=True)
    log.info("published %d tables to %s", len(fingerprints), target)
    return PublishResult(str(target), run_date, fingerprints)
