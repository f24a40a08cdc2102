"""Run the dbt project (one ``dbt build`` per night) against the warehouse.

The click chain (``int_clicks__classified`` → ``fct_clicks``) is incremental: a night re-classifies only the rows
its new deliveries can change. That is exact only on top of a finished build of the same dbt project for an
earlier or the same night, so every build is recorded in ``audit.dbt_builds`` when it starts and marked when it
finishes (inside the warehouse, so the record travels with the file), and any other night is built with
``--full-refresh``: after a failed or interrupted build the click chain may hold rows that ``fct_clicks`` never
received.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb

from shopflow.settings import Settings
from shopflow.warehouse import connect

log = logging.getLogger(__name__)

RUN_DATE_VARIABLE = "SHOPFLOW_DBT_RUN_DATE"  # read by the dbt project's run_date() macro


class DbtBuildError(RuntimeError):
    """dbt build failed; the message lists every failing model or test with dbt's message."""


@dataclass
class DbtBuildResult:
    success: bool
    invocation_id: str | None
    statuses: dict[str, int] = field(default_factory=dict)  # status -> node count
    failures: list[str] = field(default_factory=list)  # "unique_id: message"
    elapsed_seconds: float = 0.0
    full_refresh_reason: str | None = None  # why incremental models were rebuilt from scratch; None: incremental

    def raise_for_failures(self) -> None:
        if not self.success:
            lines = "\n".join(f"  - {f}" for f in self.failures) or "  (dbt raised before running any node)"
            raise DbtBuildError(f"dbt build failed:\n{lines}")

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def dbt_args(settings: Settings, command: str, *extra: str) -> list[str]:
    """The dbt CLI arguments shopflow uses: project and profile from the repo, target/logs under the data root."""
    return [
        *command.split(),  # e.g. "build" or "docs generate"
        "--project-dir",
        str(settings.dbt_project_dir),
        "--profiles-dir",
        str(settings.dbt_project_dir),
        "--target-path",
        str(settings.dbt_target_dir),
        "--log-path",
        str(settings.dbt_log_dir),
        *extra,
    ]


def dbt_environment(settings: Settings, run_date: date | None) -> dict[str, str]:
    """The environment for a dbt process: the profile points at this warehouse by absolute path (dbt-duckdb
    resolves relative paths against the working directory), and the night being built is SHOPFLOW_DBT_RUN_DATE
    (unset: every delivery). Not ``--vars``: dbt re-parses the whole project whenever those change, 3-4 s every
    night; the ``run_date()`` macro reads the variable only when a model executes, so a new night reuses dbt's
    saved parse."""
    environment = os.environ | {
        "DBT_WAREHOUSE_PATH": str(settings.warehouse_path),
        "DBT_DUCKDB_THREADS": str(settings.duckdb_threads),
        "DBT_DUCKDB_MEMORY_LIMIT": settings.duckdb_memory_limit,
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    environment.pop(RUN_DATE_VARIABLE, None)
    if run_date is not None:
        environment[RUN_DATE_VARIABLE] = run_date.isoformat()
    return environment


def run_dbt(settings: Settings, command: str, run_date: date | None = None, *extra: str) -> DbtBuildResult:
    """Run ``dbt <command>`` (build, test, docs generate, ...) in a child process and summarise its results.

    A child process, not dbtRunner in-process: dbt-duckdb keeps its DuckDB instance open after an in-process
    invocation, which would block the publish step from attaching the warehouse.
    """
    settings.dbt_log_dir.mkdir(parents=True, exist_ok=True)
    run_results = settings.dbt_target_dir / "run_results.json"
    run_results.unlink(missing_ok=True)
    dbt_executable = Path(sys.executable).with_name("dbt")
    started = time.perf_counter()
    process = subprocess.run(
        [str(dbt_executable), *dbt_args(settings, command, *extra)],
        env=dbt_environment(settings, run_date),
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    statuses: dict[str, int] = {}
    failures: list[str] = []
    invocation_id = None
    if run_results.exists():
        artifact = json.loads(run_results.read_text())
        invocation_id = artifact["metadata"].get("invocation_id")
        for node in artifact["results"]:
            statuses[node["status"]] = statuses.get(node["status"], 0) + 1
            if node["status"] in ("error", "fail", "runtime error"):
                failures.append(f"{node['unique_id']}: {(node.get('message') or '').strip()}")
    if process.returncode != 0 and not failures:
        output = (process.stdout + process.stderr).strip().splitlines()
        failures.append("dbt: " + "\n".join(output[-15:]))
    result = DbtBuildResult(process.returncode == 0, invocation_id, statuses, failures, round(elapsed, 2))
    log.info("dbt %s: success=%s %s in %.1fs", command, result.success, statuses, elapsed)
    return result


def generate_docs(settings: Settings) -> Path:
    """dbt's data dictionary and lineage graph as one self-contained HTML file; returns its path.

    Needs a built warehouse (dbt reads column types from it), so run it after a night, not during one.
    """
    result = run_dbt(settings, "docs generate", None, "--static")
    result.raise_for_failures()
    return settings.dbt_target_dir / "static_index.html"


_BUILDS_DDL = """
create schema if not exists audit;
create table if not exists audit.dbt_builds (
    build_id varchar primary key,
    run_date date not null,
    project_fingerprint varchar not null,
    full_refresh boolean not null,
    started_at timestamp not null,
    finished_at timestamp,  -- null: the build failed or was interrupted
    invocation_id varchar
)
"""


def project_fingerprint(settings: Settings) -> str:
    """sha256 over every file of the dbt project (models, macros, seeds, tests, vars): the cleaning rules."""
    digest = hashlib.sha256()
    for path in sorted(settings.dbt_project_dir.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(settings.dbt_project_dir)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def full_refresh_reason(con: duckdb.DuckDBPyConnection, run_date: date, fingerprint: str) -> str | None:
    """Why tonight's build cannot be incremental, or None when it can: the last build finished, used the same dbt
    project and a run date no later than tonight's (the incremental models then hold exactly that night's rows).

    ``con``: a connection to a warehouse that has ``audit.dbt_builds`` (:func:`build_warehouse` creates it).
    """
    last = con.execute(
        "select run_date, project_fingerprint, finished_at from audit.dbt_builds order by started_at desc limit 1"
    ).fetchone()
    if last is None:
        return "no build recorded"
    last_run_date, last_fingerprint, finished_at = last
    if finished_at is None:
        return "the last build did not finish"
    if last_fingerprint != fingerprint:
        return "the dbt project changed since the last build"
    if run_date < last_run_date:
        return f"run date before the last build's ({last_run_date.isoformat()})"
    return None


def build_warehouse(settings: Settings, run_date: date, full_refresh: bool = False) -> DbtBuildResult:
    """``dbt build`` for one night: seeds, models and data tests; raises DbtBuildError on any failure.

    Incremental models are rebuilt from scratch when ``full_refresh`` is set or :func:`full_refresh_reason` gives
    a reason. The build is recorded in ``audit.dbt_builds`` before dbt starts and marked finished after it
    succeeds, so the build after a failed or interrupted one refreshes in full. dbt's unit tests check the SQL on
    fixture rows, not the night's data, so nights skip them; the test suite runs them (:func:`run_unit_tests`).
    """
    fingerprint = project_fingerprint(settings)
    build_id = uuid.uuid4().hex
    with connect(settings) as con:
        con.execute(_BUILDS_DDL)
        reason = "requested" if full_refresh else full_refresh_reason(con, run_date, fingerprint)
        con.execute(
            "insert into audit.dbt_builds (build_id, run_date, project_fingerprint, full_refresh, started_at) "
            "values (?, ?, ?, ?, current_timestamp)",
            [build_id, run_date, fingerprint, reason is not None],
        )
    extra = ["--exclude", "resource_type:unit_test"] + (["--full-refresh"] if reason else [])
    result = run_dbt(settings, "build", run_date, *extra)
    result.full_refresh_reason = reason
    result.raise_for_failures()
    with connect(settings) as con:
        con.execute(
            "update audit.dbt_builds set finished_at = current_timestamp, invocation_id = ? where build_id = ?",
            [result.invocation_id, build_id],
        )
    log.info("dbt build for %s: %s", run_date, f"full refresh ({reason})" if reason else "incremental")
    return result


def run_unit_tests(settings: Settings) -> DbtBuildResult:
    """Every dbt unit test (fixture rows in, expected rows out); raises DbtBuildError on any failure.

    Needs a built warehouse: dbt reads the column types of each tested model's inputs from it.
    """
    result = run_dbt(settings, "test", None, "--select", "test_type:unit")
    result.raise_for_failures()
    return result
