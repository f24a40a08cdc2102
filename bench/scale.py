"""Benchmark: a full night on synthetic shops of 1M, 10M and 50M events: wall time and peak RSS per stage.

Each size is a demo shop (``shopflow.demo``; events = clicks + order lines + reviews, about 1.55 per user and day)
generated into a fresh data root, then one real night runs on it (``shopflow nightly`` without text generation:
``SHOPFLOW_DESCRIPTION_BUDGET=0``). Stage seconds and peak RSS come from the night's ``nightly.json``.
``--profile`` adds, for the largest size run, where the slowest stage spends its time: dbt's per-node timings, the
recommender's own split (embed / each candidate's tune, fit, evaluate / refit), and a cProfile of the slowest
stage re-run in-process on the same data root (top functions by cumulative time).

    nice -n 10 .venv/bin/python bench/scale.py --sizes 1M 10M --profile    # nights inherit the niceness
    nice -n 10 .venv/bin/python bench/scale.py --sizes 50M                  # long: ~30M+ rows of CSV
    .venv/bin/python bench/scale.py --quick                                 # ~20k events, no Prefect: CI smoke run

Targets: 10M <= 5 min, 50M <= 20 min, peak RSS <= 8 GB, time(50M)/time(10M) <= 6.
Writes ``bench/results/scale[-quick].json`` (sizes run earlier are kept unless re-run).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import time
from collections.abc import Callable
from datetime import date

from harness import (
    NO_GENERATION,
    QUICK_CANDIDATES,
    add_common_arguments,
    last_day,
    long_running_prefect_server,
    print_table,
    result_path,
    run_night,
    run_night_in_process,
    scratch_root,
    scratch_settings,
    write_results,
)

from shopflow.demo import DemoConfig, generate_demo_shop
from shopflow.settings import Settings

EVENTS_PER_USER_DAY = 1.55  # measured on the default demo shop (sessions_per_user_day = 0.2)
SIZES = {
    "20k": {"events": 20_000, "days": 14, "products": 200},
    "1M": {"events": 1_000_000, "days": 30, "products": 2_000},
    "10M": {"events": 10_000_000, "days": 60, "products": 5_000},
    "50M": {"events": 50_000_000, "days": 120, "products": 5_000},
}
TARGET_SECONDS = {"10M": 300, "50M": 1200}
TARGET_PEAK_RSS_MB = 8 * 1024
TARGET_GROWTH_50M_OVER_10M = 6.0
PROFILE_TOP_FUNCTIONS = 25


def demo_config(size: str) -> DemoConfig:
    spec = SIZES[size]
    users = round(spec["events"] / (EVENTS_PER_USER_DAY * spec["days"]))
    return DemoConfig(products=spec["products"], users=users, days=spec["days"])


def stage_rerun(stage: str, settings: Settings, run_date: date) -> Callable[[], object] | None:
    """A call that re-runs an in-process stage on a built data root (dbt runs in a child process: None)."""
    if stage == "recommend":
        from shopflow.models.pipeline import run_recommender_stage

        return lambda: run_recommender_stage(settings, run_date)
    if stage == "audit":
        from shopflow.expectations.audit import audit_night

        return lambda: audit_night(settings, run_date)
    return None


def profile_slowest_stage(settings: Settings, night: dict) -> dict:
    """Where the slowest stage of a night spends its time (see the module docstring)."""
    run_date = date.fromisoformat(night["run_date"])
    slowest = max(night["stages"], key=lambda stage: stage["seconds"])
    profile: dict = {"slowest_stage": slowest["stage"], "seconds": slowest["seconds"]}
    run_results = json.loads((settings.dbt_target_dir / "run_results.json").read_text())
    nodes = sorted(run_results["results"], key=lambda node: -node["execution_time"])
    profile["dbt_slowest_nodes"] = {node["unique_id"]: round(node["execution_time"], 2) for node in nodes[:10]}
    profile["dbt_node_seconds_total"] = round(sum(node["execution_time"] for node in nodes), 2)
    metrics_path = settings.reports_dir / night["run_date"] / "metrics.json"
    if metrics_path.exists():
        metrics = json.loads(metrics_path.read_text())
        profile["recommender_seconds"] = metrics["seconds"]
        profile["recommender_candidates"] = {
            name: candidate["seconds"] for name, candidate in metrics["candidates"].items()
        }
        profile["recommender_data"] = metrics["data"]
    rerun = stage_rerun(slowest["stage"], settings, run_date)
    if rerun is not None:  # dbt runs in a child process: its own node timings above are its profile
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.runcall(rerun)
        profile["cprofile_seconds"] = round(time.perf_counter() - started, 2)
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(PROFILE_TOP_FUNCTIONS)
        profile["cprofile_top_cumulative"] = text.getvalue().splitlines()
    return profile


def run_size(size: str, quick: bool) -> tuple[dict, Settings]:
    config = demo_config(size)
    settings = scratch_settings(scratch_root("scale", quick), f"events-{size}")
    started = time.perf_counter()
    generated = generate_demo_shop(config, settings.landing_dir)
    generate_seconds = round(time.perf_counter() - started, 1)
    run_date = last_day(config)
    if quick:
        night = run_night_in_process(settings, run_date, QUICK_CANDIDATES)
    else:
        with long_running_prefect_server(settings):
            night = run_night(settings, run_date, NO_GENERATION)
    events = generated.rows["clicks"] + generated.rows["orders"] + generated.rows["reviews"]
    return {
        "demo_config": {"users": config.users, "products": config.products, "days": config.days},
        "events": events,
        "rows": generated.rows,
        "generate_seconds": generate_seconds,
        "orchestration": "stage functions in one process" if quick else "shopflow nightly (Prefect, one local server)",
        "night": night.to_dict(),
    }, settings


def target_checks(results: dict) -> dict:
    checks: dict = {}
    for size, limit in TARGET_SECONDS.items():
        if size in results:
            wall = results[size]["night"]["wall_seconds"]
            checks[f"{size}_seconds"] = {"value": wall, "max": limit, "met": wall <= limit}
    peak = max(result["night"]["peak_rss_mb"] for result in results.values())
    checks["peak_rss_mb"] = {"value": peak, "max": TARGET_PEAK_RSS_MB, "met": peak <= TARGET_PEAK_RSS_MB}
    if "10M" in results and "50M" in results:
        growth = results["50M"]["night"]["wall_seconds"] / results["10M"]["night"]["wall_seconds"]
        checks["growth_50M_over_10M"] = {
            "value": round(growth, 2),
            "max": TARGET_GROWTH_50M_OVER_10M,
            "met": growth <= TARGET_GROWTH_50M_OVER_10M,
        }
    return checks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser)
    parser.add_argument("--sizes", nargs="+", choices=sorted(SIZES), default=["1M", "10M"])
    parser.add_argument("--profile", action="store_true", help="profile the slowest stage of the largest size")
    args = parser.parse_args(argv)
    sizes = ["20k"] if args.quick else args.sizes
    previous_path = result_path("scale", args)
    results = json.loads(previous_path.read_text()).get("sizes", {}) if previous_path.exists() else {}
    results = {size: result for size, result in results.items() if size not in sizes}
    previous_profile = json.loads(previous_path.read_text()).get("profile") if previous_path.exists() else None
    for size in sizes:  # the file is rewritten after every size, so a long run that is stopped keeps what finished
        results[size], settings = run_size(size, args.quick)
        write_results("scale", args, {"sizes": ordered(results), "targets": target_checks(ordered(results))})
    payload = {"sizes": ordered(results), "targets": target_checks(ordered(results)), "profile": previous_profile}
    if args.profile:
        payload["profile"] = profile_slowest_stage(settings, results[sizes[-1]]["night"])
    print_summary(payload)
    print(f"wrote {write_results('scale', args, payload)}")
    return 0


def ordered(results: dict) -> dict:
    return {size: results[size] for size in SIZES if size in results}


def print_summary(payload: dict) -> None:
    sizes = payload["sizes"]
    stage_names = list(
        dict.fromkeys(stage["stage"] for result in sizes.values() for stage in result["night"]["stages"])
    )
    rows = []
    for size, result in sizes.items():
        night = result["night"]
        stages = {stage["stage"]: stage["seconds"] for stage in night["stages"]}
        rows.append(
            [size, result["events"], night["wall_seconds"], night["cpu_seconds"]]
            + [stages.get(name) for name in stage_names]
            + [night["outside_stages_seconds"], round(night["peak_rss_mb"] / 1024, 2), night["load_average"][1]]
        )
    print_table(
        "Full night by shop size (seconds; peak RSS of the night process incl. children, GiB)",
        ["size", "events", "wall", "CPU", *stage_names, "other", "peak GiB", "load 5m"],
        rows,
    )
    checks = payload["targets"]
    print("targets:", ", ".join(f"{name} {'met' if check['met'] else 'MISSED'}" for name, check in checks.items()))
    if payload.get("profile"):
        print(f"slowest stage profiled: {payload['profile']['slowest_stage']} ({payload['profile']['seconds']} s)")


if __name__ == "__main__":
    raise SystemExit(main())
