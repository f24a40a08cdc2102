"""The audit's results: one outcome per expectation, the night's report, and their table in the warehouse."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from shopflow.expectations.thresholds import ERROR, GX_SEVERITY, WARN
from shopflow.settings import Settings
from shopflow.warehouse import connect

SEVERITY_FROM_GX = {gx_name: severity for severity, gx_name in GX_SEVERITY.items()}
#: Examples of unexpected values kept per expectation.
EXAMPLES = 5
#: Longer text in examples is cut.
MAX_EXAMPLE_CHARS = 80
#: kwargs lists longer than this (value sets of ids) are stored as their length.
MAX_LISTED_VALUES = 10

_RESULTS_DDL = """
create schema if not exists audit;
create table if not exists audit.validation_results (
    run_date date not null,
    suite varchar not null,
    entity varchar,
    expectation_type varchar not null,
    column_name varchar,
    severity varchar not null,
    success boolean not null,
    observed_value json,
    element_count bigint,
    unexpected_count bigint,
    unexpected_percent double,
    unexpected_examples json,
    description varchar not null,
    expectation_kwargs json not null,
    checked_at timestamp not null
);
"""


class AuditError(RuntimeError):
    """Error-level expectations failed; the message lists each with entity, day, column and example values."""


@dataclass(frozen=True)
class ExpectationOutcome:
    """How one expectation fared tonight: one row of ``audit.validation_results``."""

    suite: str
    entity: str | None  # None for suites whose rows are entities (the examples name them)
    expectation_type: str
    column: str | None  # stored as column_name (COLUMN is an SQL keyword)
    severity: str  # error | warn
    success: bool
    observed_value: Any  # of aggregate expectations (row count, max, ...), or the exception of a crashed one
    element_count: int | None
    unexpected_count: int | None
    unexpected_percent: float | None
    unexpected_examples: list  # up to 5 values, or {column: value} rows with the suite's index columns
    description: str  # the rule, with its thresholds
    expectation_kwargs: dict

    @classmethod
    def from_gx(cls, suite: str, entity: str | None, result: dict) -> ExpectationOutcome:
        """From one GX ``ExpectationValidationResult.to_json_dict()``."""
        config, found = result["expectation_config"], result["result"]
        kwargs = {key: _plain(_listed(value)) for key, value in config["kwargs"].items() if key != "batch_id"}
        crash = _exception_message(result.get("exception_info") or {})
        pair = [kwargs[c] for c in ("column_A", "column_B") if c in kwargs]
        columns = kwargs.get("column") or ", ".join(kwargs.get("column_list") or pair) or None
        examples = found.get("partial_unexpected_index_list") or found.get("partial_unexpected_list") or []
        return cls(
            suite=suite,
            entity=entity,
            expectation_type=config["type"],
            column=columns,
            severity=SEVERITY_FROM_GX[config["severity"]],
            success=bool(result["success"]),
            observed_value=f"expectation raised: {crash}" if crash else _plain(found.get("observed_value")),
            element_count=found.get("element_count"),
            unexpected_count=found.get("unexpected_count"),
            unexpected_percent=found.get("unexpected_percent"),
            unexpected_examples=_plain(examples[:EXAMPLES]),
            description=config.get("description") or "",
            expectation_kwargs=kwargs,
        )

    @property
    def finding(self) -> str:
        """What was observed, in words: ``"3 of 120 values (2.5%) unexpected"`` or ``"observed 1200"``."""
        if self.unexpected_count is not None and self.element_count:
            return (
                f"{self.unexpected_count} of {self.element_count} values "
                f"({self.unexpected_percent or 0:.1f}%) unexpected"
            )
        return f"observed {self.observed_value}"

    def describe(self, run_date: date) -> str:
        """One line for a failure: entity, day, suite, expectation, column, finding, rule and examples."""
        where = f"{self.entity or self.suite} on {run_date}"
        column = f" on {self.column}" if self.column else ""
        examples = f"; e.g. {format_examples(self.unexpected_examples)}" if self.unexpected_examples else ""
        rule = f"rule: {self.description}"
        return f"{where} [{self.suite}] {self.expectation_type}{column}: {self.finding}; {rule}{examples}"


@dataclass
class AuditReport:
    """The night's audit: every outcome, and whether an error-level expectation failed."""

    run_date: date
    checked_at: datetime
    results: list[ExpectationOutcome]  # one per expectation
    elapsed_seconds: float

    @property
    def errors(self) -> list[ExpectationOutcome]:
        """Failed error-level expectations: the night must stop."""
        return [o for o in self.results if not o.success and o.severity == ERROR]

    @property
    def warnings(self) -> list[ExpectationOutcome]:
        """Failed warn-level expectations: reported, the night goes on."""
        return [o for o in self.results if not o.success and o.severity == WARN]

    @property
    def passed(self) -> bool:
        return not self.errors

    def raise_for_errors(self) -> None:
        """Raise AuditError naming every failed error-level expectation (nothing may be published)."""
        if self.errors:
            lines = "\n".join(f"  - {outcome.describe(self.run_date)}" for outcome in self.errors)
            raise AuditError(
                f"audit of the night {self.run_date} failed: {len(self.errors)} error-level expectation(s) "
                f"failed, so nothing may be published:\n{lines}"
            )

    def summary(self) -> dict:
        """Counts and one line per failure (for the night's report)."""
        return {
            "run_date": self.run_date.isoformat(),
            "passed": self.passed,
            "expectations": len(self.results),
            "failed_errors": [o.describe(self.run_date) for o in self.errors],
            "failed_warnings": [o.describe(self.run_date) for o in self.warnings],
            "elapsed_seconds": self.elapsed_seconds,
        }

    def to_dict(self) -> dict:
        """Everything, JSON-ready: the summary and every outcome."""
        return self.summary() | {
            "checked_at": self.checked_at.isoformat(timespec="seconds"),
            "results": [asdict(outcome) | {"finding": outcome.finding} for outcome in self.results],
        }


def store_results(settings: Settings, report: AuditReport) -> None:
    """Replace the night's rows of ``audit.validation_results`` with this report (one row per expectation), in
    one short read-write transaction."""
    rows = pd.DataFrame(
        [
            {("column_name" if key == "column" else key): value for key, value in asdict(outcome).items()}
            | {
                "run_date": report.run_date,
                "checked_at": report.checked_at,
                "observed_value": _json(outcome.observed_value),
                "unexpected_examples": _json(outcome.unexpected_examples),
                "expectation_kwargs": _json(outcome.expectation_kwargs),
            }
            for outcome in report.results
        ]
    )
    with connect(settings) as con:
        con.execute(_RESULTS_DDL)
        con.execute("begin transaction")
        try:
            con.execute("delete from audit.validation_results where run_date = ?", [report.run_date])
            if not rows.empty:
                con.register("outcomes", rows)
                con.execute("insert into audit.validation_results by name select * from outcomes")
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise


def format_examples(examples: list) -> str:
    """``quantity='two', _row_number=7; ...`` from a list of example values or rows."""

    def one(example: Any) -> str:
        if isinstance(example, dict):
            return ", ".join(f"{key}={value!r}" for key, value in example.items())
        return repr(example)

    return "; ".join(one(example) for example in examples)


def _listed(value: Any) -> Any:
    if isinstance(value, list) and len(value) > MAX_LISTED_VALUES:
        return f"{len(value)} values"
    return value


def _exception_message(info: dict) -> str | None:
    """The message of an expectation that raised (GX nests it per metric when a metric failed)."""
    entries = [info] if "exception_message" in info else [v for v in info.values() if isinstance(v, dict)]
    messages = [entry["exception_message"] for entry in entries if entry.get("exception_message")]
    return "; ".join(messages) or None


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, default=str)


def _plain(value: Any) -> Any:
    """``value`` as plain JSON-ready Python, recursively: numpy scalars unwrapped, timestamps as ISO text, NaN and
    NaT as None, and text cut to MAX_EXAMPLE_CHARS (a 20,000-character review body is not an example)."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if value is pd.NaT or value is pd.NA or (isinstance(value, float) and not math.isfinite(value)):
        return None
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str) and len(value) > MAX_EXAMPLE_CHARS:
        return f"{value[:MAX_EXAMPLE_CHARS]}… ({len(value)} characters)"
    return value
