"""``shopflow models ...`` and ``shopflow ui mlflow``: the registry for ML engineers (MLflow imported lazily)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from shopflow.settings import Settings, configure_runtime

models_app = typer.Typer(help="The recommender's MLflow registry: versions, champion, promotion, rollback.")
ui_app = typer.Typer(help="Local web UIs, bound to 127.0.0.1.")
UI_JOBS_VARIABLE = "MLFLOW_SERVER_ENABLE_JOB_EXECUTION"


def _settings() -> Settings:
    settings = configure_runtime()
    settings.ensure_dirs()
    return settings


@contextmanager
def _exit_on_lookup_error() -> Iterator[None]:
    """A missing version or champion ends the command with its message and exit status 1, not a traceback."""
    try:
        yield
    except LookupError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(1) from error


@models_app.command("list")
def list_models() -> None:
    """Every version, newest first: aliases, family, holdout NDCG@10, gate outcome and lineage."""
    from rich.console import Console
    from rich.table import Table

    from shopflow.registry.manage import LISTED_TAGS, list_versions

    rows = list_versions(_settings())
    if not rows:
        typer.echo("no registered versions yet: run a night first")
        return
    table = Table(title="shopflow-recommender")
    for column in ("version", "aliases", *LISTED_TAGS):
        table.add_column(column.removeprefix("lineage."))
    for row in rows:
        table.add_row(*(str(value) for value in row.values()))
    Console(width=200).print(table)


@models_app.command("show")
def show(version: Annotated[str, typer.Argument(help="Registered version number, e.g. 3.")]) -> None:
    """One version in full (JSON): aliases, lineage, tags, its run's parameters and metrics."""
    from shopflow.registry.manage import show_version

    typer.echo(json.dumps(show_version(_settings(), version), indent=2, default=str))


@models_app.command("promote")
def promote(
    version: Annotated[str, typer.Argument(help="Registered version number to make champion.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded in marts.model_decisions).")],
) -> None:
    """Make VERSION the champion by hand; takes effect at the next publish of recommendations."""
    from shopflow.registry.manage import promote_version

    with _exit_on_lookup_error():
        decision = promote_version(_settings(), version, reason)
    typer.echo(f"champion: v{decision.champion_before} → v{decision.champion_after} ({decision.reason})")


@models_app.command("rollback")
def rollback(
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded in marts.model_decisions).")] = "rollback",
) -> None:
    """Point the champion back at the one the current champion replaced."""
    from shopflow.registry.manage import rollback_champion

    with _exit_on_lookup_error():
        decision = rollback_champion(_settings(), reason)
    typer.echo(f"champion: v{decision.champion_before} → v{decision.champion_after} (rolled back)")


@models_app.command("prune")
def prune(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would be deleted.")] = False,
) -> None:
    """Delete old versions and their artifacts now, as every night does after registering (retention settings)."""
    from shopflow.registry.retention import prune_model_versions

    report = prune_model_versions(_settings(), dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    deleted = ", ".join(f"v{number}" for number in report.deleted) or "nothing"
    kept = f"{len(report.kept)} version{'' if len(report.kept) == 1 else 's'}"
    typer.echo(f"{verb} {deleted} ({report.freed_bytes / 1e6:.1f} MB of artifacts); kept {kept}")


@ui_app.command("mlflow")
def mlflow_ui(
    port: Annotated[int | None, typer.Option(help="Port (default: SHOPFLOW_MLFLOW_UI_PORT).")] = None,
) -> None:
    """Start the MLflow UI on 127.0.0.1 (one worker) over the data root's registry. Ctrl-C stops."""
    settings = _settings()
    port = port or settings.mlflow_ui_port
    typer.echo(f"MLflow UI on http://127.0.0.1:{port} (Ctrl-C stops)")
    # the server's job runner (six huey worker processes, for GenAI scorers) is not needed to browse the registry
    server = subprocess.Popen(mlflow_ui_command(settings, port), env=os.environ | {UI_JOBS_VARIABLE: "false"})
    signal.signal(signal.SIGTERM, lambda *_: server.terminate())  # stopping shopflow stops the server
    try:
        code = server.wait()
    except KeyboardInterrupt:
        server.terminate()
        code = server.wait()
    raise typer.Exit(code)


def mlflow_ui_command(settings: Settings, port: int) -> list[str]:
    """``mlflow ui`` over the SQLite store and artifact root of ``settings``, bound to 127.0.0.1, one worker."""
    from shopflow.registry.tracking import artifact_root, tracking_uri

    settings.mlflow_dir.mkdir(parents=True, exist_ok=True)
    return [
        sys.executable, "-m", "mlflow", "ui",
        "--backend-store-uri", tracking_uri(settings),
        "--default-artifact-root", artifact_root(settings),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
