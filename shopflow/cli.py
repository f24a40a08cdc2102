"""The ``shopflow`` command line. Heavy libraries are imported inside commands so ``--help`` stays instant."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from shopflow.registry.cli import models_app, ui_app
from shopflow.server import local_prefect_api
from shopflow.settings import Settings, configure_runtime

app = typer.Typer(help="shopflow: the nightly data and ML workflow of an online shop.", no_args_is_help=True)
import_app = typer.Typer(help="Import a public dataset into the landing folder, in the raw data contract.")
app.add_typer(import_app, name="import")
app.add_typer(models_app, name="models")
app.add_typer(ui_app, name="ui")


def _settings() -> Settings:
    settings = configure_runtime()
    settings.ensure_dirs()
    return settings


@contextmanager
def _exit_on(*errors: type[Exception]) -> Iterator[None]:
    """Turn these errors into their message on stderr and exit status 1 (no traceback for a known failure)."""
    try:
        yield
    except errors as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc


def _echo_json(payload: dict) -> None:
    typer.echo(json.dumps(payload, indent=2, default=str))


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # Prefect's API calls, one line each


@app.command()
def demo(
    products: Annotated[int, typer.Option(help="Catalogue size at the end of the period.")] = 500,
    users: Annotated[int, typer.Option(help="Number of shoppers.")] = 3000,
    days: Annotated[int, typer.Option(help="Days of deliveries to write.")] = 30,
    seed: Annotated[int, typer.Option(help="Random seed (same seed → byte-identical files).")] = 42,
    start: Annotated[str, typer.Option(help="First day, YYYY-MM-DD.")] = "2026-01-01",
    dirt_rate: Annotated[float, typer.Option(help="Share of rows per entity made deliberately dirty.")] = 0.02,
    sessions_per_user_day: Annotated[float, typer.Option(help="Expected sessions per user per day.")] = 0.2,
    file_format: Annotated[str, typer.Option("--format", help="csv or parquet.")] = "csv",
) -> None:
    """Write a deterministic synthetic shop (orders, clicks, products, reviews) into the landing folder."""
    from shopflow.demo import DemoConfig, generate_demo_shop

    settings = _settings()
    config = DemoConfig(
        products=products,
        users=users,
        days=days,
        seed=seed,
        start=date.fromisoformat(start),
        dirt_rate=dirt_rate,
        sessions_per_user_day=sessions_per_user_day,
        file_format=file_format,
    )
    summary = generate_demo_shop(config, settings.landing_dir)
    typer.echo(f"wrote {len(summary.files)} files to {settings.landing_dir}")
    _echo_json({"rows": summary.rows, "dirt": summary.dirt})


@import_app.command("online-retail")
def import_online_retail(
    source: Annotated[Path, typer.Argument(help="The dataset's by-day folder of YYYY-MM-DD.csv(.gz) files.")],
    day: Annotated[list[str] | None, typer.Option(help="Only these days (YYYY-MM-DD); repeatable.")] = None,
) -> None:
    """Import the UCI Online Retail daily CSVs as orders and products deliveries (dirt kept for cleaning)."""
    from shopflow.online_retail import import_online_retail as run_import

    settings = _settings()
    days = [date.fromisoformat(d) for d in day] if day else None
    summary = run_import(source, settings.landing_dir, days=days)
    typer.echo(f"imported {summary.days} day(s) into {settings.landing_dir}")
    _echo_json({"rows": summary.rows})


@app.command()
def ingest(
    until: Annotated[str | None, typer.Option(help="Only deliveries up to this day (YYYY-MM-DD).")] = None,
    redeliver: Annotated[
        bool, typer.Option(help="Load a changed file for an already-loaded day as a new version of that day.")
    ] = False,
) -> None:
    """Load new landing files into the warehouse's raw schema (idempotent; refusals are listed)."""
    from shopflow.ingest import IngestError, ingest_landing

    settings = _settings()
    report = ingest_landing(settings, until=date.fromisoformat(until) if until else None, redeliver=redeliver)
    typer.echo(
        f"loaded {len(report.loaded)} file(s) ({report.rows_loaded} rows), "
        f"{len(report.unchanged)} already loaded, {len(report.refused)} refused"
    )
    with _exit_on(IngestError):
        report.raise_for_refusals()


@app.command()
def nightly(
    run_date: Annotated[
        str | None, typer.Option("--date", help="The night to run (YYYY-MM-DD); default: latest landing day.")
    ] = None,
) -> None:
    """Run one night (ingest → dbt build → audit → models → publish → report) as a Prefect flow.

    With the local task runner Prefect runs an ephemeral server for the run; with `SHOPFLOW_TASK_RUNNER=dask` the
    Dask workers need a real one, so the local server is started (or reused) unless PREFECT_API_URL is set.
    """
    settings = _settings()
    from shopflow.flows.nightly import nightly as nightly_flow

    needs_server = settings.task_runner == "dask" and not os.environ.get("PREFECT_API_URL")
    with local_prefect_api(settings) if needs_server else nullcontext():
        state = nightly_flow(run_date=date.fromisoformat(run_date) if run_date else None, return_state=True)
    if not state.is_completed():
        typer.echo(f"nightly run failed: {state.message}", err=True)
        raise typer.Exit(1)
    summary = state.result()
    _print_accounting(summary["row_accounting"])
    typer.echo(f"published {settings.analytics_path} for {summary['run_date']}; report: {summary['report']}")


@app.command()
def audit(
    run_date: Annotated[
        str | None, typer.Option("--date", help="The built night to audit (YYYY-MM-DD); default: latest landing day.")
    ] = None,
) -> None:
    """Validate a built night with the Great Expectations suites (after dbt build); exit 1 on an error-level failure.

    Results go to the warehouse table audit.validation_results and to reports/<date>/validation.json and .html."""
    from shopflow.contract import latest_landing_day
    from shopflow.expectations.audit import AuditError, audit_night

    settings = _settings()
    night = date.fromisoformat(run_date) if run_date else latest_landing_day(settings.landing_dir)
    report = audit_night(settings, night)
    _echo_json(report.summary())
    with _exit_on(AuditError):
        report.raise_for_errors()


@app.command()
def describe(
    input_csv: Annotated[
        Path,
        typer.Option(
            "--input",
            help="Products CSV (product_id, title; optional category,"
            " brand, price, currency, attributes as JSON text).",
        ),
    ],
    output_csv: Annotated[Path, typer.Option("--output", help="Where to write one described row per product.")],
    model: Annotated[
        str | None, typer.Option(help="qwen2.5-coder-0.5b, smollm2-135m or a local model folder; default: the setting.")
    ] = None,
) -> None:
    """Describe every product of a CSV with the guarded generator (no budget, nothing written to the warehouse)."""
    from dataclasses import replace

    from shopflow.models.descriptions.stage import DescriptionConfig, describe_file

    settings = _settings()
    config = DescriptionConfig.from_settings(settings)
    config = replace(config, model=model) if model else config
    described = describe_file(input_csv, output_csv, settings, config)
    _echo_json({"output": output_csv, "products": len(described), **described["source"].value_counts().to_dict()})


@app.command()
def moderate(
    input_csv: Annotated[Path, typer.Option("--input", help="Any CSV with a text column.")],
    text_column: Annotated[str, typer.Option("--text-column", help="The column to score.")],
    output_csv: Annotated[Path, typer.Option("--output", help="The input plus moderation_* columns.")],
) -> None:
    """Score every text of a CSV with the moderation ensemble (labels, flagged, reasons, model version)."""
    from shopflow.models.moderation.stage import moderate_file

    scored = moderate_file(input_csv, text_column, output_csv, _settings())
    _echo_json(
        {
            "output": output_csv,
            "texts": len(scored),
            "flagged": int(scored["moderation_flagged"].sum()),
            "model_version": scored["moderation_model_version"].iloc[0] if len(scored) else None,
        }
    )


@app.command()
def serve() -> None:
    """Serve the nightly run on its schedule (SHOPFLOW_NIGHTLY_CRON in SHOPFLOW_TIMEZONE) via a local Prefect
    server on 127.0.0.1 (started if none is running, with its state under the data root). Ctrl-C stops."""
    from shopflow.server import serve_nightly

    serve_nightly(_settings())


@app.command()
def report() -> None:
    """Print the path of the latest night's HTML report (open it in a browser; it works offline)."""
    from shopflow.report import latest_report

    typer.echo(latest_report(_settings()))


@app.command()
def docs() -> None:
    """Generate the dbt data dictionary and lineage graph (one offline HTML file) and print its path."""
    from shopflow.transform import generate_docs

    typer.echo(generate_docs(_settings()))


def _print_accounting(accounting: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Row accounting (raw = clean + quarantined)")
    for column in ("entity", "raw", "clean", "quarantined", "balanced", "quarantined by reason"):
        table.add_column(column)
    for row in accounting:
        reasons = ", ".join(f"{reason} {rows:,}" for reason, rows in row["quarantined_by_reason"].items())
        table.add_row(
            row["entity"],
            f"{row['raw_rows']:,}",
            f"{row['clean_rows']:,}",
            f"{row['quarantined_rows']:,}",
            "yes" if row["is_balanced"] else "NO",
            reasons or "-",
        )
    Console(width=160).print(table)


if __name__ == "__main__":
    app()
