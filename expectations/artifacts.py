"""The night's audit as files: ``reports/<run_date>/validation.json`` and a self-contained ``validation.html``."""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

from shopflow.expectations.results import AuditReport, ExpectationOutcome, format_examples

_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; width: 100%; margin-bottom: 1.5em; }
th, td { border: 1px solid #ddd; padding: 4px 6px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
tr.error td:first-child { background: #f8c9c9; font-weight: bold; }
tr.warn td:first-child { background: #fde7b0; }
td.examples { font-family: ui-monospace, monospace; font-size: 12px; word-break: break-all; }
"""
_COLUMNS = ("severity", "suite", "entity", "expectation", "column", "observed", "rule", "examples")


def write_artifacts(report: AuditReport, directory: Path) -> tuple[Path, Path]:
    """Write ``validation.json`` (every outcome) and ``validation.html`` (failures first) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    json_path, html_path = directory / "validation.json", directory / "validation.html"
    json_path.write_text(json.dumps(report.to_dict(), indent=2, default=str))
    html_path.write_text(render_html(report))
    return json_path, html_path


def render_html(report: AuditReport) -> str:
    """One page: verdict, failed expectations (errors, then warnings), and the passed ones folded away."""
    failed = report.errors + report.warnings
    passed = [outcome for outcome in report.results if outcome.success]
    verdict = "FAILED: nothing may be published" if report.errors else "passed"
    title = f"shopflow audit of the night {report.run_date}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title><style>{_STYLE}</style></head>
<body>
<h1>{escape(title)}: {verdict}</h1>
<p>{len(report.results)} expectations checked at {report.checked_at:%Y-%m-%d %H:%M:%S} UTC in
{report.elapsed_seconds:.1f} s: {len(report.errors)} error(s), {len(report.warnings)} warning(s).
An error stops the night; a warning is reported. Thresholds: <code>expectations/thresholds.py</code>.</p>
<h2>Failed ({len(failed)})</h2>
{_table(failed) if failed else "<p>None.</p>"}
<details><summary>Passed ({len(passed)})</summary>
{_table(passed)}
</details>
</body></html>
"""


def _table(outcomes: list[ExpectationOutcome]) -> str:
    header = "".join(f"<th>{name}</th>" for name in _COLUMNS)
    return f"<table><tr>{header}</tr>\n{''.join(_row(outcome) for outcome in outcomes)}</table>"


def _row(outcome: ExpectationOutcome) -> str:
    cells = (
        outcome.severity,
        outcome.suite,
        outcome.entity or "",
        outcome.expectation_type,
        outcome.column or "",
        outcome.finding,
        outcome.description,
    )
    examples = escape(format_examples(outcome.unexpected_examples))
    severity_class = "" if outcome.success else outcome.severity
    return (
        f'<tr class="{severity_class}">{"".join(f"<td>{escape(str(cell))}</td>" for cell in cells)}'
        f'<td class="examples">{examples}</td></tr>\n'
    )
