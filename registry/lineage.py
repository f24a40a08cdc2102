"""What a night's model was made from: run date, data snapshot, dbt invocation, audit outcome, code revision."""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass, field
from datetime import date

from shopflow.settings import PROJECT_ROOT, Settings
from shopflow.warehouse import connect, table_fingerprints

LINEAGE_TAGS = (
    "lineage.run_date",
    "lineage.data_snapshot_id",
    "lineage.dbt_invocation_id",
    "lineage.validation_passed",
    "lineage.validation_summary",
    "lineage.code_revision",
)


@dataclass(frozen=True)
class NightLineage:
    """Lineage of one night, attached as tags to its MLflow run and to every model version it registers.

    ``validation_passed``: the night's audit had no failed error-level expectation (``AuditReport.passed``);
    the promotion gate never promotes on a failed audit.
    """

    run_date: date
    data_snapshot_id: str
    dbt_invocation_id: str | None
    validation_passed: bool
    validation_summary: str = ""  # e.g. "41 expectations, 0 errors, 2 warnings"
    code_revision: str = field(default_factory=lambda: code_revision())

    @classmethod
    def from_audit(
        cls, settings: Settings, run_date: date, dbt_invocation_id: str | None, audit_summary: dict
    ) -> NightLineage:
        """The night's lineage after ``dbt build`` and the audit (``AuditReport.summary()``): marts snapshot, git."""
        outcome = (
            f"{audit_summary['expectations']} expectations, {len(audit_summary['failed_errors'])} errors, "
            f"{len(audit_summary['failed_warnings'])} warnings"
        )
        return cls(run_date, data_snapshot_id(settings), dbt_invocation_id, bool(audit_summary["passed"]), outcome)

    def tags(self) -> dict[str, str]:
        """The lineage as MLflow tags (:data:`LINEAGE_TAGS`)."""
        values = (
            self.run_date.isoformat(),
            self.data_snapshot_id,
            self.dbt_invocation_id or "none",
            str(self.validation_passed).lower(),
            self.validation_summary or "-",
            self.code_revision,
        )
        return dict(zip(LINEAGE_TAGS, values, strict=True))


def audited_marts(settings: Settings) -> list[str]:
    """The marts dbt builds (``dbt_project/models/marts/*.sql``): the tables the audit checks and models read."""
    return sorted(path.stem for path in (settings.dbt_project_dir / "models" / "marts").glob("*.sql"))


def data_snapshot_id(settings: Settings) -> str:
    """``sha256`` (first 16 hex digits) of the row counts and content hashes of the dbt-built marts.

    Tables written after the audit (recommendations, model decisions, ...) are left out, so re-running a night
    on the same data gives the same id.
    """
    wanted = {f"marts.{name}" for name in audited_marts(settings)}
    with connect(settings, read_only=True) as con:
        fingerprints = {name: value for name, value in table_fingerprints(con, ("marts",)).items() if name in wanted}
    if not fingerprints:
        raise RuntimeError(f"no dbt-built marts in {settings.warehouse_path}: run dbt build before registering")
    return hashlib.sha256(json.dumps(fingerprints, sort_keys=True).encode()).hexdigest()[:16]


def code_revision() -> str:
    """The git commit of the checkout (``+dirty`` when it has uncommitted changes), or ``unknown`` without git."""
    try:
        sha = _git("rev-parse", "HEAD")
        dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{sha}+dirty" if dirty else sha


def _git(*arguments: str) -> str:
    return subprocess.run(
        ["git", *arguments], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True, timeout=30
    ).stdout.strip()
