"""Benchmark: a full night vs the bare library work on the same data in one plain process.

For one demo shop: (a) the real night, ``shopflow nightly`` (Prefect flow against one long-running local server, as
under ``shopflow serve``; ingest → dbt build → GX audit → embed → recommender → register → describe → moderate →
publish → report); (b) the same stage functions called in one process without Prefect (no MLflow ``register``);
(c) the bare work (:mod:`bare`): one DuckDB script doing the same cleaning, one implicit ALS fit, one transformers
encoder pass over the same products, one ``generate`` pass over ``--describe`` products' prompts. Each on a fresh
data root, so the night encodes every product (no embedding cache); the three share one dequantised language model
cache, filled before the first run, so none of them pays the one-time dequantisation. The night describes
``--describe`` products (its description budget) and guards, retries and moderates them; the GX audit, the
candidate comparison and moderation are work the bare side does not do (the table shows each).

    .venv/bin/python bench/overhead.py               # demo shop: 3,000 users, 500 products, 30 days, 16 described
    .venv/bin/python bench/overhead.py --repeats 3   # medians of 3 (ratios are taken within each repeat)
    .venv/bin/python bench/overhead.py --describe 0  # without text generation on every side
    .venv/bin/python bench/overhead.py --quick       # tiny shop, in-process night only, no generation: CI smoke run

Target: night / bare <= 1.3. Writes ``bench/results/overhead[-quick].json``.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from contextlib import nullcontext
from functools import partial
from pathlib import Path

from harness import (
    QUICK_CANDIDATES,
    NightRun,
    add_common_arguments,
    add_shop_arguments,
    cpu_seconds,
    last_day,
    long_running_prefect_server,
    median,
    print_table,
    run_night,
    run_night_in_process,
    scratch_root,
    scratch_settings,
    shop_config,
    write_results,
)

from shopflow.demo import generate_demo_shop
from shopflow.settings import Settings

TARGET_RATIO = 1.3
BARE_SCRIPT = Path(__file__).resolve().parent / "bare.py"


def night_row(run: NightRun, settings: Settings) -> dict:
    """Stage seconds of a night, with the recommender split into embedding / candidate comparison / refit."""
    metrics = json.loads((settings.reports_dir / run.run_date.isoformat() / "metrics.json").read_text())
    return run.to_dict() | {
        "recommender_seconds": metrics["seconds"],
        "embedding": metrics["embeddings"],  # what the recommend stage found cached (the embed stage ran first)
        "candidates": list(metrics["candidates"]),
    }


def run_bare(night: Settings, run_date: str, out: Path, describe: int, language_model_folder: Path | None) -> dict:
    """The bare work in a child process, on the night's landing files and compiled dbt models, its encoder in the
    night's precision."""
    from shopflow.devices import resolve_device, resolve_precision

    precision = resolve_precision(night.encoder_precision, resolve_device(night.device))
    command = [
        sys.executable,
        str(BARE_SCRIPT),
        "--landing",
        str(night.landing_dir),
        "--until",
        run_date,
        "--manifest",
        str(night.dbt_target_dir / "manifest.json"),
        "--project-dir",
        str(night.dbt_project_dir),
        "--out",
        str(out),
        "--precision",
        precision,
        "--describe",
        str(describe),
    ]
    if language_model_folder is not None:
        command += ["--language-model-folder", str(language_model_folder)]
    started, children_cpu = time.perf_counter(), cpu_seconds(resource.RUSAGE_CHILDREN)
    process = subprocess.run(command, capture_output=True, text=True, check=True)
    wall = round(time.perf_counter() - started, 2)
    cpu = round(cpu_seconds(resource.RUSAGE_CHILDREN) - children_cpu, 2)
    return json.loads(process.stdout.strip().splitlines()[-1]) | {"wall_seconds": wall, "cpu_seconds": cpu}


def language_model_folder(root: Path, describe: int) -> Path | None:
    """The night's description model dequantised once into ``root/language-models``, in the precision the night
    will use (None without generation)."""
    if not describe:
        return None
    from shopflow.devices import resolve_device, resolve_precision
    from shopflow.models.descriptions.language_model import SHIPPED_MODELS, cached_dequantised_model

    settings = Settings()
    model = settings.description_model
    if model not in SHIPPED_MODELS:
        raise SystemExit(f"overhead.py compares shipped models only, not {model!r}")
    precision = resolve_precision(settings.language_model_precision, resolve_device(settings.device))
    folder, _ = cached_dequantised_model(SHIPPED_MODELS[model], root / "language-models", precision)
    return folder


def run_repeat(source: Settings, run_date, index: int, quick: bool, describe: int) -> dict:
    """The night(s) and the bare work, each on a fresh data root; ratios night wall / bare wall."""
    root = scratch_root("overhead", quick)
    folder = language_model_folder(root, describe)
    cache = {"language_model_cache": root / "language-models"}
    environment = {
        "SHOPFLOW_DESCRIPTION_BUDGET": str(describe),
        "SHOPFLOW_LANGUAGE_MODEL_CACHE": str(root / "language-models"),
    }
    outcome: dict = {}
    if quick:
        nights = {"plain": lambda settings, day: run_night_in_process(settings, day, QUICK_CANDIDATES)}
    else:
        nights = {
            "prefect": partial(run_night, environment=environment),
            "plain": lambda settings, day: run_night_in_process(settings.model_copy(update=cache), day, None, describe),
        }
    for name, runner in nights.items():
        settings = scratch_settings(root, f"{name}-{index}")
        shutil.copytree(source.landing_dir, settings.landing_dir, dirs_exist_ok=True)
        with long_running_prefect_server(settings) if name == "prefect" else nullcontext():
            outcome[name] = night_row(runner(settings, run_date), settings)
        last = settings
    outcome["bare"] = run_bare(last, run_date.isoformat(), root / f"bare-{index}", describe, folder)
    outcome["ratio"] = {
        name: round(outcome[name]["wall_seconds"] / outcome["bare"]["wall_seconds"], 2) for name in nights
    }
    outcome["cpu_ratio"] = {
        name: round(outcome[name]["cpu_seconds"] / outcome["bare"]["cpu_seconds"], 2) for name in nights
    }
    return outcome


COLUMNS = [
    "run",
    "wall",
    "ingest",
    "clean",
    "audit",
    "train",
    "embed",
    "generate",
    "moderate",
    "publish",
    "other",
    "ratio",
]


def table_rows(repeat: dict) -> list[list]:
    """One row per run in ``COLUMNS`` order (seconds; None where a run has no such part)."""
    rows = []
    for name in ("prefect", "plain"):
        if name not in repeat:
            continue
        night = repeat[name]
        stages = {stage["stage"]: stage["seconds"] for stage in night["stages"]}
        rec = night["recommender_seconds"]
        rows.append(
            [
                f"night ({name})",
                night["wall_seconds"],
                stages["ingest"],
                stages["dbt-build"],
                stages["audit"],
                rec["compare"] + rec["refit_and_outputs"],
                stages.get("embed", 0.0) + rec["embed"],
                stages.get("describe"),
                stages.get("moderate"),
                stages["publish"],
                night["outside_stages_seconds"],
                repeat["ratio"][name],
            ]
        )
    bare = repeat["bare"]["seconds"]
    generate = bare["generator_load"] + bare["generate"] if "generate" in bare else None
    rows.append(
        [
            "bare (one process)",
            repeat["bare"]["wall_seconds"],
            bare["load_raw"],
            bare["clean_sql"],
            None,
            bare["read_matrix_and_texts"] + bare["als_fit"],
            bare["encoder_load"] + bare["encode"],
            generate,
            None,
            None,
            round(repeat["bare"]["wall_seconds"] - sum(bare.values()), 2),
            1.0,
        ]
    )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--describe", type=int, default=16, help="products described by the night and by bare")
    add_shop_arguments(parser, users=3000, products=500, days=30)
    args = parser.parse_args(argv)
    describe = 0 if args.quick else args.describe
    config = shop_config(args)
    repeats = 1 if args.quick else args.repeats
    source = scratch_settings(scratch_root("overhead", args.quick), "landing-source")
    generated = generate_demo_shop(config, source.landing_dir)
    run_date = last_day(config)
    results = [run_repeat(source, run_date, index, args.quick, describe) for index in range(repeats)]
    ratios = {name: median([r["ratio"][name] for r in results]) for name in results[0]["ratio"]}
    cpu_ratios = {name: median([r["cpu_ratio"][name] for r in results]) for name in results[0]["cpu_ratio"]}

    print_table(
        f"Night vs bare library work (repeat 1 of {repeats}; demo shop {config.users:,} users, "
        f"{config.products:,} products, {config.days} days; seconds)",
        COLUMNS,
        table_rows(results[0]),
    )
    headline = ratios.get("prefect", ratios["plain"])
    print(
        f"median night/bare wall: {ratios}, CPU: {cpu_ratios} (target <= {TARGET_RATIO}: "
        f"{'met' if headline <= TARGET_RATIO else 'MISSED'});"
        " train = candidate comparison + refit (night) vs one ALS fit (bare); generate = description stage (night:"
        f" {describe} products, guarded, retried) vs one generate pass over {describe} products (bare)"
    )
    path = write_results(
        "overhead",
        args,
        {
            "demo_config": {"users": config.users, "products": config.products, "days": config.days},
            "demo_rows": generated.rows,
            "run_date": run_date.isoformat(),
            "repeats": repeats,
            "median_ratio": ratios,
            "median_cpu_ratio": cpu_ratios,
            "target_ratio_max": TARGET_RATIO,
            "target_met": headline <= TARGET_RATIO,
            "described_products": describe,
            "runs": results,
        },
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
