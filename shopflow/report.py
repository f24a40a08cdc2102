"""The run report: one static HTML page per night, images inline, readable offline.

It is assembled from what the night left behind: ``reports/<date>/nightly.json`` (loads, row accounting, stage
timings), the load audit in the warehouse (volumes per entity and day), and the artifacts other stages write next
to it when they ran (``validation.json`` from the audit, ``metrics.json`` from the recommender). A section whose
artifact is absent says so instead of disappearing.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import shutil
from datetime import date
from pathlib import Path

from shopflow.settings import Settings
from shopflow.warehouse import connect

log = logging.getLogger(__name__)

TEMPLATE = Path(__file__).parent / "templates" / "report.html.j2"


def render_report(settings: Settings, run_date: date) -> Path:
    """Write ``reports/<run_date>/index.html`` (and copy it to ``reports/latest/``); returns the night's page."""
    from jinja2 import Environment

    night_dir = settings.reports_dir / run_date.isoformat()
    summary = json.loads((night_dir / "nightly.json").read_text())
    volumes = _volumes(settings)
    page = (
        Environment(autoescape=True)
        .from_string(TEMPLATE.read_text())
        .render(
            run_date=run_date.isoformat(),
            home=settings.home,
            analytics=settings.analytics_path,
            volumes_png=_volumes_chart(volumes) if volumes else None,
            loaded=_loaded_tonight(summary),
            accounting=summary["row_accounting"],
            quarantine_png=_quarantine_chart(summary["row_accounting"]),
            validation=_validation_section(night_dir / "validation.json"),
            metrics=_metrics_section(night_dir / "metrics.json"),
            recommender_skipped=summary.get("recommender", {}).get("skipped"),
            decision=summary.get("registry", {}).get("decision"),
            pruned=summary.get("registry", {}).get("pruned"),
            history_png=_model_history_chart(settings.reports_dir),
            descriptions=summary.get("descriptions"),
            moderation=summary.get("moderation"),
            stages=summary.get("stages", []),
            stages_png=_stages_chart(summary.get("stages", [])),
        )
    )
    index = night_dir / "index.html"
    index.write_text(page, encoding="utf-8")
    latest = settings.reports_dir / "latest"
    latest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(index, latest / "index.html")
    log.info("report written to %s", index)
    return index


def latest_report(settings: Settings) -> Path:
    path = settings.reports_dir / "latest" / "index.html"
    if not path.exists():
        raise FileNotFoundError(f"no report yet under {settings.reports_dir}: run `shopflow nightly` first")
    return path


def _volumes(settings: Settings) -> list[tuple[str, date, int]]:
    """(entity, delivery day, rows) of the newest load of every entity and day."""
    if not settings.warehouse_path.exists():
        return []
    with connect(settings, read_only=True) as con:
        return con.execute(
            "select entity, delivery_date, arg_max(rows, version) from audit.loads group by all order by 2, 1"
        ).fetchall()


def _loaded_tonight(summary: dict) -> list[tuple[str, int, int]]:
    per_entity: dict[str, list[int]] = {}
    for loaded in summary["ingest"]["loaded"]:
        files_rows = per_entity.setdefault(loaded["entity"], [0, 0])
        files_rows[0] += 1
        files_rows[1] += loaded["rows"]
    return [(entity, files, rows) for entity, (files, rows) in sorted(per_entity.items())]


def _validation_section(path: Path) -> dict | None:
    """The audit's outcomes (``validation.json``), failures first."""
    if not path.exists():
        return None
    audit = json.loads(path.read_text())
    rows = audit["results"]
    failed = sorted((r for r in rows if not r["success"]), key=lambda r: r["severity"] != "error")
    return {
        "passed": audit["passed"],
        "total": len(rows),
        "rows": rows,
        "failed": failed,
        "summary": f"{len(rows)} expectations: {len(audit['failed_errors'])} error(s), "
        f"{len(audit['failed_warnings'])} warning(s) in {audit['elapsed_seconds']} s",
    }


def _metrics_section(path: Path) -> dict | None:
    """The night's selection and, on a comparison night, every candidate's holdout metrics with 95% CIs."""
    if not path.exists():
        return None
    metrics = json.loads(path.read_text())
    section = {"selection": metrics["selection"], "selected": metrics["selected"], "outputs": metrics["outputs"]}
    candidates = metrics.get("candidates")
    if not candidates:
        return section | {"columns": [], "rows": []}
    columns = list(next(iter(candidates.values()))["holdout"])
    rows = [
        (name, [_with_ci(result["holdout"].get(column)) for column in columns]) for name, result in candidates.items()
    ]
    return section | {
        "columns": columns,
        "rows": rows,
        "holdout_window": metrics["split"]["holdout_window"],
        "evaluated_users": metrics["holdout_targets"]["evaluated_users"],
        "cold_items": metrics["holdout_targets"]["cold_items"],
    }


def _model_history_chart(reports_dir: Path) -> str | None:
    """Holdout NDCG@10 (with CI) of every candidate across the nights that compared candidates."""
    compared = [json.loads(path.read_text()) for path in sorted(reports_dir.glob("????-??-??/metrics.json"))]
    compared = [metrics for metrics in compared if metrics.get("candidates")]
    if len(compared) < 2:
        return None
    history: dict[str, list[tuple[str, float, float, float]]] = {}
    for metrics in compared:
        for name, result in metrics["candidates"].items():
            ndcg = result["holdout"]["ndcg@10"]
            low, high = ndcg.get("ci95") or (ndcg["value"], ndcg["value"])
            history.setdefault(name, []).append((metrics["run_date"], ndcg["value"], low, high))
    figure, axes = _figure(10, 3.2)
    for name, points in history.items():
        days, values, lows, highs = zip(*points, strict=True)
        axes.plot(days, values, marker="o", label=name)
        axes.fill_between(days, lows, highs, alpha=0.12)
    axes.set_ylabel("holdout NDCG@10")
    axes.legend(ncol=4, fontsize="small")
    figure.autofmt_xdate()
    return _png(figure)


def _with_ci(metric: dict | None) -> tuple[str, str]:
    """(value, "[low, high]") to three decimals; dashes for a metric a candidate lacks."""
    if not metric or metric.get("value") is None:
        return "–", ""
    low, high = metric.get("ci95") or (None, None)
    return f"{metric['value']:.3f}", (f"[{low:.3f}, {high:.3f}]" if low is not None else "")


def _png(figure) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure(width: float, height: float):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height))


def _volumes_chart(volumes: list[tuple[str, date, int]]) -> str:
    figure, axes = _figure(10, 3.2)
    for entity in sorted({entity for entity, _, _ in volumes}):
        days = [(day, rows) for e, day, rows in volumes if e == entity]
        axes.plot([d for d, _ in days], [r for _, r in days], marker=".", label=entity)
    axes.set_yscale("symlog")
    axes.set_ylabel("rows delivered")
    axes.legend(loc="upper left", ncol=4, fontsize=8)
    figure.autofmt_xdate()
    return _png(figure)


def _quarantine_chart(accounting: list[dict]) -> str | None:
    bars = [
        (f"{row['entity']}: {reason}", rows)
        for row in accounting
        for reason, rows in row["quarantined_by_reason"].items()
    ]
    if not bars:
        return None
    bars.sort(key=lambda bar: bar[1])
    figure, axes = _figure(10, 0.28 * len(bars) + 0.8)
    axes.barh([label for label, _ in bars], [rows for _, rows in bars], color="#b35c00")
    axes.set_xscale("symlog", linthresh=1)
    axes.set_xlabel("quarantined rows (symmetric log scale)")
    axes.tick_params(axis="y", labelsize=8)
    return _png(figure)


def _stages_chart(stages: list[dict]) -> str | None:
    if not stages:
        return None
    figure, axes = _figure(10, 0.35 * len(stages) + 0.8)
    axes.barh([s["stage"] for s in stages][::-1], [s["seconds"] for s in stages][::-1], color="#3760a0")
    axes.set_xlabel("seconds")
    return _png(figure)
