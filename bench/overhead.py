"""Benchmark: a full night vs the bare library work on the same data in one plain process.

For one demo shop: (a) the real night, ``shopflow nightly`` (Prefect flow against one long-running local server, as
under ``shopflow serve``; ingest → dbt build → GX audit → embed → recommender → register → moderate → publish →
report); (b) the same stage functions called in one process without Prefect; (c) the bare work (:mod:`bare`): one
DuckDB script doing the same cleaning, one implicit ALS fit, one transformers encoder pass over the same products.
Each on a fresh data root, so the night encodes every product (no embedding cache). Text generation is off on
both sides (``SHOPFLOW_DESCRIPTION_BUDGET=0``; measured against its compute bound by ``bench/generation.py``).

    .venv/bin/python bench/overhead.py               # demo shop: 3,000 users, 500 products, 30 days
    .venv/bin/python bench/overhead.py --repeats 3   # medians of 3 (ratios are taken within each repeat)
    .venv/bin/python bench/overhead.py --quick       # tiny shop, in-process night only: CI smoke run

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
    NO_GENERATION,
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


def run_bare(night: Settings, run_date: str, out: Path) -> dict:
    """The bare work in a child process, on the night's landing files and compiled dbt models."""
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
    ]
    started, children_cpu = time.perf_counter(), cpu_seconds(resource.RUSAGE_CHILDREN)
    process = subprocess.run(command, capture_output=True, text=True, check=True)
    wall = round(time.perf_counter() - started, 2)
    cpu = round(cpu_seconds(resource.RUSAGE_CHILDREN) - children_cpu, 2)
    return json.loads(process.stdout.strip().splitlines()[-1]) | {"wall_seconds": wall, "cpu_seconds": cpu}


def run_repeat(source: Settings, run_date, index: int, quick: bool) -> dict:
    """The night(s) and the bare work, each on a fresh data root; ratios night wall / bare wall."""
    root = scratch_root("overhead", quick)
    outcome: dict = {}
    if quick:
        nights = {"plain": lambda settings, day: run_night_in_process(settings, day, QUICK_CANDIDATES)}
    else:
        nights = {"prefect": partial(run_night, environment=NO_GENERATION), "plain": run_night_in_process}
    for name, runner in nights.items():
        settings = scratch_settings(root, f"{name}-{index}")
        shutil.copytree(source.landing_dir, settings.landing_dir, dirs_exist_ok=True)
        with long_running_prefect_server(settings) if name == "prefect" else nullcontext():
            outcome[name] = night_row(runner(settings, run_date), settings)
        last = settings
    outcome["bare"] = run_bare(last, run_date.isoformat(), root / f"bare-{index}")
    outcome["ratio"] = {
        name: round(outcome[name]["wall_seconds"] / outcome["bare"]["wall_seconds"], 2) for name in nights
    }
    outcome["cpu_ratio"] = {
        name: round(outcome[name]["cpu_seconds"] / outcome["bare"]["cpu_seconds"], 2) for name in nights
    }
    return outcome


def table_rows(repeat: dict) -> list[list]:
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
                stages["publish"],
                night["outside_stages_seconds"],
                None,
                repeat["ratio"][name],
            ]
        )
    bare = repeat["bare"]["seconds"]
    accounted = sum(bare.values())
    rows.append(
        [
            "bare (one process)",
            repeat["bare"]["wall_seconds"],
            bare["load_raw"],
            bare["clean_sql"],
            None,
            bare["read_matrix_and_texts"] + bare["als_fit"],
            bare["encoder_load"] + bare["encode"],
            None,
            round(repeat["bare"]["wall_seconds"] - accounted, 2),
            None,
            1.0,
        ]
    )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser)
    parser.add_argument("--repeats", type=int, default=1)
    add_shop_arguments(parser, users=3000, products=500, days=30)
    args = parser.parse_args(argv)
    config = shop_config(args)
    repeats = 1 if args.quick else args.repeats
    source = scratch_settings(scratch_root("overhead", args.quick), "landing-source")
    generated = generate_demo_shop(config, source.landing_dir)
    run_date = last_day(config)
    results = [run_repeat(source, run_date, index, args.quick) for index in range(repeats)]
    ratios = {name: median([r["ratio"][name] for r in results]) for name in results[0]["ratio"]}
    cpu_ratios = {name: median([r["cpu_ratio"][name] for r in results]) for name in results[0]["cpu_ratio"]}

    print_table(
        f"Night vs bare library work (repeat 1 of {repeats}; demo shop {config.users:,} users, "
        f"{config.products:,} products, {config.days} days; seconds)",
        ["run", "wall", "ingest", "clean", "audit", "train", "embed", "publish", "other", "generate", "ratio"],
        table_rows(results[0]),
    )
    headline = ratios.get("prefect", ratios["plain"])
    print(
        f"median night/bare wall: {ratios}, CPU: {cpu_ratios} (target <= {TARGET_RATIO}: "
        f"{'met' if headline <= TARGET_RATIO else 'MISSED'});"
        " train = candidate comparison + refit (night) vs one ALS fit (bare); generate: no LLM stage yet"
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
            "generation": "not measured: the nightly flow has no LLM description stage yet",
            "runs": results,
        },
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
