"""The nightly audit (write-audit-publish): validate the built night before anything is published.

``audit_night`` reads the night from the warehouse (one read-only connection, closed before validating), runs
the Great Expectations suites of :mod:`shopflow.expectations.suites`, replaces the night's rows of
``audit.validation_results`` in one short read-write transaction, and writes ``reports/<run_date>/validation.json``
and ``validation.html``. The caller decides what a failure means: ``report.raise_for_errors()`` stops the night.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, date, datetime

from shopflow.expectations.artifacts import write_artifacts
from shopflow.expectations.night import read_night
from shopflow.expectations.results import AuditError, AuditReport, store_results
from shopflow.expectations.thresholds import CleaningLimits
from shopflow.settings import Settings

__all__ = ["AuditError", "AuditReport", "audit_night"]

log = logging.getLogger(__name__)

# Great Expectations logs ~200 INFO lines about its own registry when imported: here, or earlier by the night's
# background imports (shopflow.warmup), which the flow module starts after importing this one.
logging.getLogger("great_expectations").setLevel(logging.WARNING)


def audit_night(settings: Settings, run_date: date) -> AuditReport:
    """Validate the night ``run_date`` (after ``dbt build``), store the results and artifacts, return the report."""
    from shopflow.expectations.suites import night_suites, validate  # imports Great Expectations (4–20 s)

    started = time.perf_counter()
    checked_at = datetime.now(UTC).replace(tzinfo=None)
    night = read_night(settings, run_date)
    outcomes = validate(night_suites(night, CleaningLimits.from_dbt_project(settings.dbt_project_dir)))
    report = AuditReport(run_date, checked_at, outcomes, round(time.perf_counter() - started, 2))
    store_results(settings, report)
    write_artifacts(report, settings.reports_dir / run_date.isoformat())
    log.info(
        "audit %s: %d expectations, %d error(s), %d warning(s) in %.1fs",
        run_date,
        len(outcomes),
        len(report.errors),
        len(report.warnings),
        report.elapsed_seconds,
    )
    for outcome in report.warnings:
        log.warning("audit warning: %s", outcome.describe(run_date))
    return report
