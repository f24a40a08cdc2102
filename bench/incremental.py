"""Benchmark: the first full night vs the next night (one new day) vs a re-run of that same night.

One demo shop is generated with ``days + 1`` days of deliveries; then, on one data root, three real nights run
in a row (``shopflow nightly --date``): the first on day ``days`` (ingests everything so far), the next on day
``days + 1`` (one new day lands) and the same night again (nothing new). Where the time goes comes from the
nights' own records: per-stage seconds (``nightly.json``), dbt's per-node timings (``run_results.json``) and the
recommender's split (``metrics.json``: embed / compare candidates / refit).

    .venv/bin/python bench/incremental.py              # demo shop: 3,000 users, 500 products, 30 + 1 days
    .venv/bin/python bench/incremental.py --repeats 3  # medians over 3 sequences (each on a fresh data root)
    .venv/bin/python bench/incremental.py --in-process # the same stage functions without Prefect
    .venv/bin/python bench/incremental.py --no-generation --users 21500 --products 2000   # ~1M events, no LLM
    .venv/bin/python bench/incremental.py --quick      # tiny shop, one sequence, no Prefect: CI smoke run

Targets: next night <= 10 % of the first; re-run <= 15 s. Writes ``bench/results/incremental[-quick].json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Callable
from contextlib import nullcontext
from datetime import date, timedelta
from functools import partial

from harness import (
    NO_GENERATION,
    QUICK_CANDIDATES,
    NightRun,
    add_common_arguments,
    add_shop_arguments,
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

from shopflow.demo import DemoConfig, generate_demo_shop
from shopflow.settings import Settings

TARGET_NEXT_RATIO = 0.10
TARGET_RERUN_SECONDS = 15.0
NIGHTS = ("first", "next", "rerun")
SLOWEST_DBT_NODES = 8


def dbt_node_seconds(settings: Settings) -> dict[str, float]:
    """Execution seconds per dbt node of the latest ``dbt build`` (models, seeds and tests)."""
    artifact = json.loads((settings.dbt_target_dir / "run_results.json").read_text())
    return {node["unique_id"]: round(node["execution_time"], 2) for node in artifact["results"]}


def recommender_seconds(settings: Settings, night: str) -> dict:
    metrics_path = settings.reports_dir / night / "metrics.json"
    return json.loads(metrics_path.read_text())["seconds"] if metrics_path.exists() else {}


def run_sequence(
    config: DemoConfig, landing_source: Settings, settings: Settings, night: Callable[[Settings, date], NightRun]
) -> dict:
    """First, next and re-run night (each run by ``night``) on the fresh data root ``settings``, fed from an
    already generated landing folder."""
    shutil.copytree(landing_source.landing_dir, settings.landing_dir, dirs_exist_ok=True)
    first_day = config.start + timedelta(days=config.days - 2)
    next_day = first_day + timedelta(days=1)
    nights = {}
    for name, run_date in zip(NIGHTS, (first_day, next_day, next_day), strict=True):
        run = night(settings, run_date)
        nodes = dbt_node_seconds(settings)
        nights[name] = run.to_dict() | {
            "dbt_nodes": len(nodes),
            "dbt_node_seconds_total": round(sum(nodes.values()), 2),
            "slowest_dbt_nodes": dict(sorted(nodes.items(), key=lambda item: -item[1])[:SLOWEST_DBT_NODES]),
            "recommender_seconds": recommender_seconds(settings, run_date.isoformat()),
            "rows_loaded": run.summary["ingest"]["rows_loaded"],
        }
    return nights


def summarise(sequences: list[dict]) -> dict:
    """Medians over sequences per night and stage, and the two target checks (ratios within one sequence)."""
    medians = {
        night: {
            "wall_seconds": median([seq[night]["wall_seconds"] for seq in sequences]),
            "cpu_seconds": median([seq[night]["cpu_seconds"] for seq in sequences]),
            "stages": {
                stage["stage"]: median(
                    [
                        next(s["seconds"] for s in seq[night]["stages"] if s["stage"] == stage["stage"])
                        for seq in sequences
                    ]
                )
                for stage in sequences[0][night]["stages"]
            },
        }
        for night in NIGHTS
    }
    next_ratios = [seq["next"]["wall_seconds"] / seq["first"]["wall_seconds"] for seq in sequences]
    next_cpu_ratios = [seq["next"]["cpu_seconds"] / seq["first"]["cpu_seconds"] for seq in sequences]
    rerun = medians["rerun"]["wall_seconds"]
    return {
        "medians": medians,
        "next_over_first": {"per_sequence": [round(r, 3) for r in next_ratios], "median": median(next_ratios)},
        "next_over_first_cpu": {
            "per_sequence": [round(r, 3) for r in next_cpu_ratios],
            "median": median(next_cpu_ratios),
        },
        "targets": {
            "next_over_first_max": TARGET_NEXT_RATIO,
            "next_over_first_met": median(next_ratios) <= TARGET_NEXT_RATIO,
            "rerun_seconds_max": TARGET_RERUN_SECONDS,
            "rerun_seconds_met": rerun <= TARGET_RERUN_SECONDS,
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser)
    parser.add_argument("--repeats", type=int, default=1, help="sequences to take medians over")
    parser.add_argument("--in-process", action="store_true", help="stage functions without Prefect (as --quick)")
    parser.add_argument("--no-generation", action="store_true", help="nights without the LLM description stage")
    add_shop_arguments(parser, users=3000, products=500, days=30)  # days before the first night
    args = parser.parse_args(argv)
    config = shop_config(args, extra_days=1)  # the next night's day
    repeats = 1 if args.quick else args.repeats
    root = scratch_root("incremental", args.quick)
    source = scratch_settings(root, "landing-source")
    generated = generate_demo_shop(config, source.landing_dir)
    if args.quick:
        orchestration, run_one_night = (
            "stage functions in one process (quick)",
            partial(run_night_in_process, candidates=QUICK_CANDIDATES),
        )
    elif args.in_process:
        orchestration, run_one_night = "stage functions in one process", run_night_in_process
    else:
        environment = NO_GENERATION if args.no_generation else None
        orchestration = "shopflow nightly (Prefect flow, one long-running local server)"
        run_one_night = partial(run_night, environment=environment)
    sequences = []
    for index in range(repeats):
        settings = scratch_settings(root, f"sequence-{index}")
        with nullcontext() if args.quick or args.in_process else long_running_prefect_server(settings):
            sequences.append(run_sequence(config, source, settings, run_one_night))
    summary = summarise(sequences)

    stages = list(summary["medians"]["first"]["stages"])
    rows = [
        [
            night,
            sequences[0][night]["rows_loaded"],
            summary["medians"][night]["wall_seconds"],
            summary["medians"][night]["cpu_seconds"],
        ]
        + [summary["medians"][night]["stages"].get(stage) for stage in stages]
        for night in NIGHTS
    ]
    print_table(
        f"Incremental nights (median of {repeats}; demo shop {config.users:,} users, {config.products:,} products)",
        ["night", "rows loaded", "wall s", "CPU s", *[f"{stage} s" for stage in stages]],
        rows,
    )
    targets = summary["targets"]
    print(
        f"next/first = {summary['next_over_first']['median']:.2f} wall, "
        f"{summary['next_over_first_cpu']['median']:.2f} CPU (target <= {TARGET_NEXT_RATIO:.2f}: "
        f"{'met' if targets['next_over_first_met'] else 'MISSED'}); re-run "
        f"{summary['medians']['rerun']['wall_seconds']:.1f} s (target <= {TARGET_RERUN_SECONDS:.0f} s: "
        f"{'met' if targets['rerun_seconds_met'] else 'MISSED'})"
    )
    path = write_results(
        "incremental",
        args,
        {
            "demo_config": {"users": config.users, "products": config.products, "days": config.days},
            "demo_rows": generated.rows,
            "repeats": repeats,
            "orchestration": orchestration,
            "text_generation": not (args.quick or args.in_process or args.no_generation),
            **summary,
            "sequences": sequences,
        },
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
