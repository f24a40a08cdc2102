"""Run the dbt project (one ``dbt build`` per night) against the warehouse, in-process."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from datetime import date

from shopflow.settings import Settings

log = logging.getLogger(__name__)


class DbtBuildError(RuntimeError):
    """dbt build failed; the message lists every failing model or test with dbt's message."""


@dataclass
class DbtBuildResult:
    success: bool
    invocation_id: str | None
    statuses: dict[str, int] = field(default_factory=dict)  # status -> node count
    failures: list[str] = field(default_factory=list)  # "unique_id: message"
    elapsed_seconds: float = 0.0

    def raise_for_failures(self) -> None:
        if not self.success:
            lines = "\n".join(f"  - {f}" for f in self.failures) or "  (dbt raised before running any node)"
            raise DbtBuildError(f"dbt build failed:\n{lines}")

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def dbt_args(settings: Settings, command: str, run_date: date | None, *extra: str) -> list[str]:
    """The dbt CLI arguments shopflow uses: project and profile from the repo, target/logs under the data root."""
    args = [
        command,
        "--project-dir", str(settings.dbt_project_dir),
        "--profiles-dir", str(settings.dbt_project_dir),
        "--target-path", str(settings.dbt_target_dir),
        "--log-path", str(settings.dbt_log_dir),
    ]
    if run_date is not None:
        args += ["--vars", json.dumps({"run_date": run_date.isoformat()})]
    return args + list(extra)


def dbt_environment(settings: Settings) -> None:
    """Point the profile at this warehouse (absolute path: dbt-duckdb resolves relative ones against the cwd)."""
    os.environ["DBT_WAREHOUSE_PATH"] = str(settings.warehouse_path)
    os.environ["DBT_DUCKDB_THREADS"] = str(settings.duckdb_threads)
    os.environ["DBT_DUCKDB_MEMORY_LIMIT"] = settings.duckdb_memory_limit
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")


def run_dbt(settings: Settings, command: str, run_date: date | None = None, *extra: str) -> DbtBuildResult:
    """Invoke ``dbt <command>`` (build, test, docs generate, ...) and summarise the node results."""
    from dbt.cli.main import dbtRunner  # lazy: ~2 s import

    settings.dbt_log_dir.mkdir(parents=True, exist_ok=True)
    dbt_environment(settings)
    outcome = dbtRunner().invoke(dbt_args(settings, command, run_date, "--quiet", *extra))
    results = list(outcome.result) if outcome.result is not None and hasattr(outcome.result, "__iter__") else []
    statuses: dict[str, int] = {}
    failures: list[str] = []
    for node_result in results:
        status = str(node_result.status)
        statuses[status] = statuses.get(status, 0) + 1
        if status in ("error", "fail", "runtime error"):
            failures.append(f"{node_result.node.unique_id}: {(node_result.message or '').strip()}")
    if outcome.exception is not None:
        failures.append(f"dbt: {outcome.exception}")
    invocation_id = getattr(getattr(outcome.result, "args", None), "invocation_id", None)
    if invocation_id is None:
        from dbt_common.invocation import get_invocation_id

        invocation_id = get_invocation_id()
    elapsed = float(getattr(outcome.result, "elapsed_time", 0.0) or 0.0)
    result = DbtBuildResult(outcome.success, invocation_id, statuses, failures, elapsed)
    log.info("dbt %s: success=%s %s in %.1fs", command, result.success, statuses, elapsed)
    return result


def build_warehouse(settings: Settings, run_date: date) -> DbtBuildResult:
    """``dbt build`` for one night: seeds, models, tests and unit tests; raises DbtBuildError on any failure."""
    result = run_dbt(settings, "build", run_date)
    result.raise_for_failures()
    return result
