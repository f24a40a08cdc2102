"""Shared plumbing of the bench scripts: machine facts, scratch data roots, real nights, one table, one JSON file.

A "night" is the real thing: ``shopflow nightly --date D`` in a child process (the Prefect flow with every stage)
against a scratch ``SHOPFLOW_HOME`` (:func:`run_night`), or, for quick modes and to isolate orchestration cost,
the same stage functions called in this process (:func:`run_night_in_process`). Per-stage seconds and peak RSS
come from the night's own ``reports/<D>/nightly.json`` (:mod:`shopflow.stages`), never from re-timing here; the
harness adds the night's wall time and CPU seconds (children included).
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from shopflow.demo import DemoConfig
from shopflow.settings import Settings

RESULTS_DIR = Path(__file__).resolve().parent / "results"
SHOPFLOW = Path(sys.executable).with_name("shopflow")


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages: how much else ran on the cores while we measured."""
    return [round(load, 2) for load in os.getloadavg()]


def machine() -> dict:
    """Cores, memory and software of this machine, plus the load average right now."""
    meminfo = Path("/proc/meminfo")
    total_kib = (
        next((int(line.split()[1]) for line in meminfo.read_text().splitlines() if line.startswith("MemTotal")), 0)
        if meminfo.exists()
        else 0
    )
    return {
        "cpus": os.cpu_count(),
        "ram_gib": round(total_kib / 2**20, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average": load_average(),
    }


def median(values: Sequence[float]) -> float:
    return round(statistics.median(values), 2)


def scratch_settings(root: Path, name: str, fresh: bool = True) -> Settings:
    """Settings for a data root ``root/name`` (emptied first when ``fresh``), directories created."""
    home = root / name
    if fresh and home.exists():
        shutil.rmtree(home)
    settings = Settings(home=home)
    settings.ensure_dirs()
    return settings


def scratch_root(name: str, quick: bool) -> Path:
    """A per-script scratch folder under the system temp dir. Full runs share one (kept between runs for reuse;
    scripts empty what they reuse); a quick run gets its own, removed at exit, so CI smoke runs never touch the
    data roots of a long benchmark running at the same time."""
    suffix = f"-quick-{os.getpid()}" if quick else ""
    root = Path(tempfile.gettempdir()) / f"shopflow-bench-{name}{suffix}"
    if quick and not root.exists():
        atexit.register(shutil.rmtree, root, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    return root


@dataclass
class NightRun:
    """One real night: wall time of the whole ``shopflow nightly`` process and the stages it recorded."""

    run_date: date
    wall_seconds: float
    stages: list[dict]
    cpu_seconds: float  # user + system CPU of the night, child processes (dbt) included: robust to other load
    load_average: list[float] = field(default_factory=list)  # right after the night ended
    summary: dict = field(default_factory=dict, repr=False)  # the night's nightly.json

    def stage_seconds(self) -> dict[str, float]:
        return {stage["stage"]: stage["seconds"] for stage in self.stages}

    @property
    def peak_rss_mb(self) -> float:
        return max((stage["peak_rss_mb"] for stage in self.stages), default=0.0)

    def to_dict(self) -> dict:
        stage_total = sum(stage["seconds"] for stage in self.stages)
        return {
            "run_date": self.run_date.isoformat(),
            "wall_seconds": self.wall_seconds,
            "cpu_seconds": self.cpu_seconds,
            "stage_seconds_total": round(stage_total, 2),
            "outside_stages_seconds": round(self.wall_seconds - stage_total, 2),  # process start, Prefect, report
            "peak_rss_mb": self.peak_rss_mb,
            "stages": self.stages,
            "load_average": self.load_average,
        }


def cpu_seconds(who: int = resource.RUSAGE_SELF) -> float:
    """User + system CPU seconds so far of this process (``RUSAGE_SELF``) or of its waited-for children."""
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


#: Settings of a night without text generation (the description stage writes nothing and loads no model).
NO_GENERATION = {"SHOPFLOW_DESCRIPTION_BUDGET": "0"}


def run_night(settings: Settings, run_date: date, environment: dict[str, str] | None = None) -> NightRun:
    """``shopflow nightly --date run_date`` on ``settings.home`` in a child process, with ``environment`` added
    (e.g. :data:`NO_GENERATION`); raises if the night failed."""
    environment = os.environ | {"SHOPFLOW_HOME": str(settings.home)} | (environment or {})
    command = [str(SHOPFLOW), "nightly", "--date", run_date.isoformat()]
    started_at = time.time()
    started, children_cpu = time.perf_counter(), cpu_seconds(resource.RUSAGE_CHILDREN)
    process = subprocess.run(command, env=environment, capture_output=True, text=True)
    wall = round(time.perf_counter() - started, 2)
    cpu = round(cpu_seconds(resource.RUSAGE_CHILDREN) - children_cpu, 2)
    log_file = settings.home / f"nightly-{run_date.isoformat()}.log"
    log_file.write_text(process.stdout + process.stderr)
    if process.returncode != 0:
        tail = "\n".join((process.stdout + process.stderr).strip().splitlines()[-25:])
        raise RuntimeError(f"night {run_date} failed (exit {process.returncode}); full log {log_file}:\n{tail}")
    summary_path = settings.reports_dir / run_date.isoformat() / "nightly.json"
    summary = json.loads(summary_path.read_text())
    if summary_path.stat().st_mtime < started_at:  # an unchanged re-run: the flow stopped after ingest
        summary = summary | {"unchanged": True, "stages": [], "ingest": {"rows_loaded": 0}}
    return NightRun(run_date, wall, summary["stages"], cpu, load_average(), summary)


@contextmanager
def long_running_prefect_server(settings: Settings) -> Iterator[None]:
    """Point the nights of this block at one local Prefect server on ``settings``' data root, as the nights that
    ``shopflow serve`` schedules are; started before the first night and stopped after the last, so no night pays
    for it. (A bare ``shopflow nightly`` starts an ephemeral server each time: 15–30 s on a busy 2-core box.)
    The server's own CPU is not in the nights' ``cpu_seconds``."""
    from shopflow.server import local_prefect_api

    with local_prefect_api(settings):
        yield


#: Recommender candidates of the quick modes' nights (CI smoke runs): two real families instead of all eight.
QUICK_CANDIDATES = ("popularity", "als")


def run_night_in_process(
    settings: Settings, run_date: date, candidates: tuple[str, ...] | None = None, description_budget: int = 0
) -> NightRun:
    """The night's stage functions called directly in this process, without Prefect (``flows/nightly.py`` wiring,
    embedding in one shard; no MLflow ``register`` stage). ``candidates``: the recommender families to compare
    (default: the stage's own); ``description_budget``: products the description stage generates (default none,
    as :data:`NO_GENERATION`).

    Used by the quick modes (a Prefect ephemeral server costs ~30 s per night) and to separate orchestration
    overhead from stage work. Writes ``nightly.json`` like the flow; the HTML report (outside the flow's stages)
    is not rendered.
    """
    from shopflow.allocator import configure_malloc
    from shopflow.expectations.audit import audit_night
    from shopflow.ingest import ingest_landing
    from shopflow.models.descriptions.stage import run_description_stage
    from shopflow.models.embeddings import MiniLMEncoder
    from shopflow.models.moderation.stage import run_moderation_stage
    from shopflow.models.pipeline import embed_catalogue, run_recommender_stage, write_recommendation_tables
    from shopflow.publish import publish_snapshot
    from shopflow.stages import stage
    from shopflow.transform import build_warehouse
    from shopflow.warehouse import connect, row_accounting
    from shopflow.warmup import imports_in_background

    configure_malloc()  # the malloc thresholds of a `shopflow` process (its BLAS and OpenMP variables come too late)
    started = time.perf_counter()
    own_cpu, children_cpu = cpu_seconds(), cpu_seconds(resource.RUSAGE_CHILDREN)
    records = []
    with stage("ingest") as record:
        ingested = ingest_landing(settings, until=run_date)
        ingested.raise_for_refusals()
        record.rows_out = ingested.rows_loaded
    records.append(record)
    with imports_in_background(), stage("dbt-build") as record:  # as the flow: a wait for the imports is outside
        built = build_warehouse(settings, run_date)
        accounting = row_accounting(settings)
        record.rows_out = sum(entity["clean_rows"] for entity in accounting)
    records.append(record)
    with stage("audit") as record:
        audit_night(settings, run_date).raise_for_errors()
    records.append(record)
    with stage("embed") as record:
        encoder = MiniLMEncoder.from_settings(settings)
        counts = embed_catalogue(settings, 1, lambda parts: [encoder.encode(part) for part in parts], encoder)
        record.rows_in, record.rows_out = counts["products"], counts["encoded"]
    records.append(record)
    with stage("recommend") as record:
        result = run_recommender_stage(settings, run_date, candidates=candidates)
        with connect(settings) as con:
            record.rows_out = sum(
                write_recommendation_tables(con, result.recommendations, result.similar_products).values()
            )
    records.append(record)
    with stage("describe") as record:
        described = run_description_stage(
            settings.model_copy(update={"description_budget": description_budget}), run_date
        )
        record.rows_in, record.rows_out = described.products, len(described.descriptions)
    records.append(record)
    with stage("moderate") as record:
        moderated = run_moderation_stage(settings, run_date)
        record.rows_in, record.rows_out = moderated.texts, len(moderated.scores)
    records.append(record)
    with stage("publish") as record:
        publish_snapshot(settings, run_date, built.invocation_id)
    records.append(record)
    summary = {
        "run_date": run_date.isoformat(),
        "ingest": ingested.to_dict(),
        "dbt": built.to_dict(),
        "row_accounting": accounting,
        "stages": [record.to_dict() for record in records],
    }
    night_dir = settings.reports_dir / run_date.isoformat()
    night_dir.mkdir(parents=True, exist_ok=True)
    (night_dir / "nightly.json").write_text(json.dumps(summary, indent=2, default=str))
    wall = round(time.perf_counter() - started, 2)
    cpu = round(cpu_seconds() - own_cpu + cpu_seconds(resource.RUSAGE_CHILDREN) - children_cpu, 2)
    return NightRun(run_date, wall, summary["stages"], cpu, load_average(), summary)


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """``--quick`` (tiny data, CI smoke run) and ``--results-dir``, shared by every bench script."""
    parser.add_argument("--quick", action="store_true", help="tiny data, few repeats: CI smoke run (no figures)")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help="where the JSON result goes")


#: The tiny demo shop of the quick modes (CI smoke runs).
QUICK_SHOP = DemoConfig(products=40, users=120, days=15)


def add_shop_arguments(parser: argparse.ArgumentParser, users: int, products: int, days: int) -> None:
    """``--users``, ``--products``, ``--days``: the demo shop a script generates (ignored with ``--quick``)."""
    parser.add_argument("--users", type=int, default=users, help="demo shop: number of shoppers")
    parser.add_argument("--products", type=int, default=products, help="demo shop: catalogue size")
    parser.add_argument("--days", type=int, default=days, help="demo shop: days of deliveries")


def shop_config(args: argparse.Namespace, extra_days: int = 0) -> DemoConfig:
    """The demo shop of ``args`` (:data:`QUICK_SHOP` with ``--quick``), ``extra_days`` more days generated."""
    base = QUICK_SHOP if args.quick else DemoConfig(products=args.products, users=args.users, days=args.days)
    return DemoConfig(products=base.products, users=base.users, days=base.days + extra_days)


def last_day(config: DemoConfig) -> date:
    """The latest delivery day of a demo shop."""
    return config.start + timedelta(days=config.days - 1)


def result_path(name: str, args: argparse.Namespace) -> Path:
    """``<results dir>/<name>[-quick].json``."""
    return args.results_dir / f"{name}{'-quick' if args.quick else ''}.json"


def write_results(name: str, args: argparse.Namespace, payload: dict) -> Path:
    """Write ``<results dir>/<name>[-quick].json`` with the machine, date and command prepended; returns the path."""
    path = result_path(name, args)
    path.parent.mkdir(parents=True, exist_ok=True)
    quick = args.quick
    document = {
        "benchmark": name,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "machine": machine(),
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        **payload,
    }
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    return path


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A plain aligned text table on stdout (numbers right-aligned)."""
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [max(len(str(h)), *(len(row[i]) for row in cells)) if cells else len(str(h)) for i, h in enumerate(header)]
    numeric = [all(_is_number(row[i]) for row in rows) if rows else False for i in range(len(header))]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True))

    print(f"\n{title}")
    print(line([str(h) for h in header]))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print(line(row))
    print(flush=True)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.1f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return "-" if value is None else str(value)
