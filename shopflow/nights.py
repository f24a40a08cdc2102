"""A finished night is not rebuilt: re-running it with nothing changed returns what it published.

A night's fingerprint covers everything its output depends on: the deliveries loaded up to the run date (entity,
day, version, sha256 from ``audit.loads``), the code and dbt project (every source file under the checkout), and
the settings. The nightly flow stores it in ``reports/<date>/nightly.json``; a re-run whose fingerprint matches,
while the published snapshot is still that night's, skips every stage after ingest.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date

import duckdb

from shopflow.settings import PROJECT_ROOT, Settings
from shopflow.warehouse import connect

#: Folders of the checkout whose files shape a night's output, and the file kinds that count.
SOURCE_FOLDERS = ("shopflow", "flows", "models", "registry", "expectations", "dbt_project")
SOURCE_SUFFIXES = {".py", ".sql", ".yml", ".yaml", ".csv", ".j2", ".json", ".npz"}


def night_fingerprint(settings: Settings, run_date: date) -> str:
    """sha256 over the night's loaded deliveries, the source files and the settings (call after ingest)."""
    digest = hashlib.sha256(run_date.isoformat().encode())
    with connect(settings, read_only=True) as con:
        loads = con.execute(
            "select entity, delivery_date, version, sha256 from audit.loads where delivery_date <= ? order by all",
            [run_date],
        ).fetchall()
    digest.update(json.dumps(loads, default=str).encode())
    for folder in SOURCE_FOLDERS:
        for path in sorted((PROJECT_ROOT / folder).rglob("*")):
            if path.suffix in SOURCE_SUFFIXES and "__pycache__" not in path.parts and path.is_file():
                digest.update(str(path.relative_to(PROJECT_ROOT)).encode())
                digest.update(path.read_bytes())
    digest.update(settings.model_dump_json().encode())
    return digest.hexdigest()


def finished_night(settings: Settings, run_date: date, fingerprint: str) -> dict | None:
    """The summary of ``run_date`` when it already finished with this fingerprint and its snapshot is still the
    published one (same run date and table fingerprints in its ``snapshot_info``); else None."""
    summary_path = settings.reports_dir / run_date.isoformat() / "nightly.json"
    if not summary_path.exists() or not settings.analytics_path.exists():
        return None
    summary = json.loads(summary_path.read_text())
    if summary.get("fingerprint") != fingerprint:
        return None
    with duckdb.connect(str(settings.analytics_path), read_only=True) as con:
        published_date, published_tables = con.execute("select run_date, tables from snapshot_info").fetchone()
    if published_date != run_date or json.loads(published_tables) != summary["published"]["tables"]:
        return None
    return summary
