import json
import re
import shutil
import subprocess
from datetime import date
from pathlib import Path

import pytest

from shopflow.report import latest_report, render_report
from shopflow.settings import Settings
from shopflow.warehouse import connect


def write_night(settings: Settings, run_date: str) -> None:
    night = settings.reports_dir / run_date
    night.mkdir(parents=True)
    summary = {
        "run_date": run_date,
        "ingest": {"loaded": [{"entity": "orders", "rows": 120}, {"entity": "orders", "rows": 30}]},
        "row_accounting": [
            {
                "entity": "orders",
                "raw_rows": 150,
                "clean_rows": 140,
                "quarantined_rows": 10,
                "is_balanced": True,
                "quarantined_by_reason": {"duplicate_row": 7, "missing_user_id": 3},
            }
        ],
        "stages": [
            {"stage": "ingest", "status": "ok", "seconds": 1.5, "rows_in": None, "rows_out": 150, "peak_rss_mb": 90.0},
            {
                "stage": "dbt-build",
                "status": "ok",
                "seconds": 9.0,
                "rows_in": 150,
                "rows_out": 140,
                "peak_rss_mb": 95.0,
            },
        ],
    }
    (night / "nightly.json").write_text(json.dumps(summary))
    with connect(settings) as con:
        con.execute("create schema audit")
        con.execute(
            "create table audit.loads as select * from (values ('orders', date '2026-01-01', 1, 120),"
            " ('orders', date '2026-01-02', 1, 30)) as t(entity, delivery_date, version, rows)"
        )


def test_report_renders_offline_with_inline_images(settings: Settings) -> None:
    write_night(settings, "2026-01-02")
    page = render_report(settings, date(2026, 1, 2))
    html = page.read_text()
    assert page == settings.reports_dir / "2026-01-02" / "index.html"
    assert latest_report(settings).read_text() == html
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == 3  # volumes, quarantine reasons, stage timings
    assert "http://" not in html and "https://" not in html  # nothing to fetch: readable offline
    assert re.search(r"<td>orders</td><td class=\"num\">150</td>\s*<td class=\"num\">140</td>", html)
    assert "dbt-build" in html and ">9.0<" in html
    assert "No recommender ran for this night." in html


IMAGE_PROBE = """<script>
window.addEventListener("load", () => {
  const images = [...document.images];
  const loaded = images.filter((image) => image.complete && image.naturalWidth > 0).length;
  document.body.insertAdjacentHTML("beforeend", `<p id="probe">${loaded}/${images.length}</p>`);
});
</script>"""


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium (.ci/run installs it)")
def test_report_images_load_in_a_real_browser(settings: Settings, tmp_path: Path) -> None:
    write_night(settings, "2026-01-02")
    page = render_report(settings, date(2026, 1, 2))
    probed = tmp_path / "probed.html"
    probed.write_text(page.read_text().replace("</body>", IMAGE_PROBE + "</body>"))
    browser = subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=10000",
            "--dump-dom",
            probed.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert re.search(r'<p id="probe">3/3</p>', browser.stdout), browser.stdout[-500:]


def write_metrics(settings: Settings, run_date: str, compared: bool) -> None:
    """The recommender stage's metrics.json of a comparison night (two candidates) or of a refit night."""
    selection = {"mode": "compare" if compared else "refit", "reason": "last comparison 2025-12-20 is 7 day(s) old"}
    if not compared:
        selection["reason"] = "refit of the champion's configuration (als); last comparison 2026-01-01, 1 day(s) ago"
    metrics = {
        "selection": selection,
        "selected": {
            "name": "als",
            "version": f"als-{run_date}-1a2b3c4d",
            "warm_start": None if compared else {"from": "2026-01-01", "iterations": 2},  # the previous night's
        },
        "outputs": {"users_with_recommendations": 1234, "products_with_similar": 56},
    }
    if compared:
        ndcg = {"popularity": (0.101, 0.09, 0.11), "als": (0.2, 0.18, 0.22)}
        metrics |= {
            "candidates": {
                name: {"holdout": {"ndcg@10": {"value": value, "ci95": [low, high]}}}
                for name, (value, low, high) in ndcg.items()
            },
            "split": {"holdout_window": ["2025-12-26", "2026-01-01"]},
            "holdout_targets": {"evaluated_users": 321, "cold_items": 4},
        }
    (settings.reports_dir / run_date / "metrics.json").write_text(json.dumps(metrics))


def test_the_recommender_section_shows_the_comparison_or_why_there_was_none(settings: Settings) -> None:
    write_night(settings, "2026-01-01")
    write_metrics(settings, "2026-01-01", compared=True)
    compared = render_report(settings, date(2026, 1, 1)).read_text()
    assert "<td>als <b>(selected)</b></td>" in compared and "0.101" in compared and "[0.180, 0.220]" in compared
    assert "321 users" in compared
    assert "Why a comparison tonight: last comparison 2025-12-20 is 7 day(s) old" in compared

    summary = json.loads((settings.reports_dir / "2026-01-01" / "nightly.json").read_text())
    (settings.reports_dir / "2026-01-02").mkdir(parents=True)
    (settings.reports_dir / "2026-01-02" / "nightly.json").write_text(json.dumps(summary | {"run_date": "2026-01-02"}))
    write_metrics(settings, "2026-01-02", compared=False)
    refitted = render_report(settings, date(2026, 1, 2)).read_text()
    assert "No comparison tonight (refit of the champion&#39;s configuration (als)" in refitted
    assert (
        "<b>als</b>\n(als-2026-01-02-1a2b3c4d) refitted from the factors of 2026-01-01\n(2 ALS iterations)" in refitted
    )
    assert "1,234 users" in refitted
    assert "(selected)" not in refitted and "<th>candidate</th>" not in refitted


def test_the_champion_section_names_the_decision_and_the_versions_retention_deleted(settings: Settings) -> None:
    write_night(settings, "2026-01-03")
    write_metrics(settings, "2026-01-03", compared=False)
    night = settings.reports_dir / "2026-01-03" / "nightly.json"
    decision = {
        "outcome": "refreshed", "reason": "same configuration, newer data", "promoted": True,
        "challenger_version": "9", "champion_before": "7", "champion_after": "9", "audit_passed": True,
        "comparison": None, "margin": 0.005, "mlflow_run_id": "abc123",
    }  # fmt: skip
    pruned = {"kept": ["7", "8", "9"], "deleted": ["2", "3"], "freed_bytes": 412_000_000}
    night.write_text(json.dumps(json.loads(night.read_text()) | {"registry": {"decision": decision, "pruned": pruned}}))
    page = render_report(settings, date(2026, 1, 3)).read_text()
    assert "<b>refreshed</b>: same configuration, newer data" in page
    assert "Retention deleted 2 older version(s)\n(v2, v3; 412.0 MB of artifacts)." in page
