import subprocess
import sys
import time

from typer.testing import CliRunner

from shopflow.cli import app

runner = CliRunner()


def test_help_is_quick_and_lists_the_commands() -> None:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "shopflow.cli", "--help"], capture_output=True, text=True, check=True
    )
    elapsed = time.perf_counter() - started
    for command in ("demo", "import", "ingest", "nightly"):
        assert command in result.stdout
    heavy = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, shopflow.cli; "
            "print(sorted(m for m in ('duckdb', 'prefect', 'dbt', 'torch', 'pandas') if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert heavy.stdout.strip() == "[]", "the CLI module must import heavy libraries lazily"
    assert elapsed < 10  # generous for a loaded CI box; typically well under a second


def test_ingest_command_reports_loads_and_fails_on_refusals(settings, write_landing) -> None:
    write_landing("products", "2026-01-01", [{"product_id": "P1", "title": "Lamp"}])
    result = runner.invoke(app, ["ingest"])
    assert result.exit_code == 0, result.output
    assert "loaded 1 file(s) (1 rows)" in result.output
    write_landing("products", "2026-01-02", [{"sku": "P1"}])
    result = runner.invoke(app, ["ingest"])
    assert result.exit_code == 1
    assert (
        "products/2026-01-02.csv" in result.output and "missing required column(s) product_id, title" in result.output
    )


def test_demo_command_writes_a_landing_folder(settings) -> None:
    result = runner.invoke(app, ["demo", "--products", "20", "--users", "30", "--days", "2"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (settings.landing_dir / "orders").iterdir()) == ["2026-01-01.csv", "2026-01-02.csv"]
