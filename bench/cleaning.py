"""Benchmark: cleaning with dbt vs the single-SQL floor vs an equivalent pandas implementation.

Per dataset the landing files are ingested for real (``shopflow.ingest``); then on the same raw tables:

* **dbt**: ``shopflow.transform.build_warehouse`` (the night's ``dbt build``: seeds, models, data tests), after
  one untimed ``dbt parse``: every night after a warehouse's first reuses the parsed project, so the timed builds
  are a night's, not a first one's; dbt's own per-node timings split each into cleaning models (staging +
  intermediate), other models, and tests;
* **floor**: the same compiled SQL in one DuckDB connection (:mod:`sql_floor`), on a copy of the raw warehouse;
* **pandas**: :mod:`pandas_cleaning` (the same rules, vectorised) on the raw tables read into DataFrames.

The clean/quarantine counts per entity and reason of all three are asserted equal. Datasets: UCI Online Retail ×3
(the deterministic scale-up of shared/notes/data.md §5; skipped when the dataset is absent) and a synthetic shop.

    .venv/bin/python bench/cleaning.py                      # Online Retail x3 + demo shop (~1M click events)
    .venv/bin/python bench/cleaning.py --users 100000       # a bigger synthetic shop
    .venv/bin/python bench/cleaning.py --reuse              # reuse the ingested scratch roots of a former run
    .venv/bin/python bench/cleaning.py --quick              # tiny demo shop only: CI smoke run

Targets: dbt cleaning <= 1.3x the floor; >= 20x faster than pandas. Writes ``bench/results/cleaning[-quick].json``.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import time
from collections.abc import Callable
from datetime import date

import duckdb
from harness import (
    add_common_arguments,
    add_shop_arguments,
    cpu_seconds,
    last_day,
    median,
    print_table,
    scratch_root,
    scratch_settings,
    shop_config,
    write_results,
)
from pandas_cleaning import classify_all, clean_counts
from sql_floor import CLEANING_LAYERS, floor_statements, run_floor

from shopflow.contract import ENTITIES
from shopflow.demo import DemoConfig, generate_demo_shop
from shopflow.settings import Settings

TARGET_FLOOR_RATIO = 1.3
TARGET_PANDAS_SPEEDUP = 20.0
REPLICAS = 3
COUNTS_SQL = """
select '{entity}' as entity, coalesce(quarantine_reason, 'clean') as reason, count(*) as n
from intermediate.int_{entity}__classified group by all
"""


def reason_counts(con: duckdb.DuckDBPyConnection, entities: list[str]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for entity in entities:
        for _, reason, n in con.execute(COUNTS_SQL.format(entity=entity)).fetchall():
            counts.setdefault(entity, {})[reason] = n
    return {entity: dict(sorted(reasons.items())) for entity, reasons in counts.items()}


def write_online_retail_x3(settings: Settings) -> None:
    """Online Retail ×3 (replica k: own invoices and customers, shifted k years) as by-day CSVs, imported."""
    from shopflow.online_retail import import_online_retail

    source = settings.datasets_dir / "online-retail" / "by-day"
    by_day = settings.home / "online-retail-x3" / "by-day"
    by_day.mkdir(parents=True, exist_ok=True)
    files = "[" + ", ".join(f"'{path}'" for path in sorted(source.glob("*.csv.gz"))) + "]"
    with duckdb.connect() as con:
        con.execute(
            f"""
            create table scaled as
            with base as (
                select *, row_number() over () as source_order
                from read_csv({files}, header = true, all_varchar = true)
            )
            select case when k = 0 then InvoiceNo else InvoiceNo || '-' || k end as InvoiceNo, StockCode, Description,
                   Quantity,
                   strftime(cast(InvoiceDate as timestamp) + to_years(cast(k as integer)), '%Y-%m-%d %H:%M:%S')
                       as InvoiceDate,
                   UnitPrice,
                   case when CustomerID is null then null
                        else cast(cast(CustomerID as double) + 100000 * k as varchar) end as CustomerID,
                   Country, k, source_order
            from base, range({REPLICAS}) as r(k)
            """
        )
        days = [row[0] for row in con.execute("select distinct InvoiceDate[:10] from scaled order by 1").fetchall()]
        for day in days:
            con.execute(
                f"""copy (select * exclude (k, source_order) from scaled where InvoiceDate[:10] = '{day}'
                          order by k, source_order) to '{by_day / f"{day}.csv"}' (header, delimiter ',')"""
            )
    import_online_retail(by_day, settings.landing_dir)


def write_demo(config: DemoConfig) -> Callable[[Settings], None]:
    def write(settings: Settings) -> None:
        generate_demo_shop(config, settings.landing_dir)

    return write


def dbt_split(settings: Settings) -> dict[str, float]:
    """Seconds of the latest dbt build by node kind, from dbt's own run_results.json."""
    artifact = json.loads((settings.dbt_target_dir / "run_results.json").read_text())
    split = {"cleaning_models": 0.0, "other_models": 0.0, "tests": 0.0, "seeds": 0.0}
    for node in artifact["results"]:
        uid, seconds = node["unique_id"], node["execution_time"]
        if uid.startswith("model."):
            layer = "cleaning_models" if uid.split(".")[2].startswith(("stg_", "int_")) else "other_models"
            split[layer] += seconds
        elif uid.startswith("seed."):
            split["seeds"] += seconds
        else:
            split["tests"] += seconds
    return {kind: round(value, 2) for kind, value in split.items()}


def run_dataset(
    name: str, write: Callable[[Settings], None], run_date: date, repeats: int, reuse: bool, quick: bool
) -> dict:
    from shopflow.ingest import ingest_landing
    from shopflow.transform import build_warehouse, run_dbt

    root = scratch_root("cleaning", quick)
    settings = scratch_settings(root, name, fresh=not reuse)
    started = time.perf_counter()
    if not settings.warehouse_path.exists():
        write(settings)
    ingest_landing(settings, until=run_date).raise_for_refusals()  # a no-op on a reused, already ingested root
    prepare_seconds = round(time.perf_counter() - started, 1)
    raw_copy = root / f"{name}-floor" / "warehouse.duckdb"  # the compiled SQL names the catalog "warehouse"
    raw_copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(settings.warehouse_path, raw_copy)
    with duckdb.connect(str(raw_copy), read_only=True) as con:
        entities = [e for e in ENTITIES if con.execute(f"select count(*) from raw.{e}").fetchall()[0][0] > 0]
        raw_rows = {e: con.execute(f"select count(*) from raw.{e}").fetchall()[0][0] for e in entities}

    parse = run_dbt(settings, "parse")
    parse.raise_for_failures()
    runs = []
    for _ in range(repeats):
        run: dict = {}
        children_cpu = cpu_seconds(resource.RUSAGE_CHILDREN)
        built = build_warehouse(settings, run_date, full_refresh=True)  # every repeat cleans all rows
        run["dbt_build_seconds"] = built.elapsed_seconds
        run["dbt_build_cpu_seconds"] = round(cpu_seconds(resource.RUSAGE_CHILDREN) - children_cpu, 2)
        run["dbt_node_seconds"] = dbt_split(settings)
        statements = floor_statements(settings.dbt_target_dir / "manifest.json", settings.dbt_project_dir)
        floor_db = raw_copy.parent / "floor" / "warehouse.duckdb"
        floor_db.parent.mkdir(exist_ok=True)
        shutil.copyfile(raw_copy, floor_db)
        with duckdb.connect(str(floor_db)) as con:
            con.execute(f"set threads = {settings.duckdb_threads}")
            floor_started, floor_cpu = time.perf_counter(), cpu_seconds()
            run["floor_layer_seconds"] = run_floor(con, statements)
            run["floor_seconds"] = round(time.perf_counter() - floor_started, 2)
            run["floor_cpu_seconds"] = round(cpu_seconds() - floor_cpu, 2)
            floor_counts = reason_counts(con, entities)
        run["floor_cleaning_seconds"] = round(sum(run["floor_layer_seconds"].get(k, 0) for k in CLEANING_LAYERS), 2)
        pandas_started = time.perf_counter()
        with duckdb.connect(str(raw_copy), read_only=True) as con:
            raw = {entity: con.execute(f"select * from raw.{entity}").df() for entity in entities}
        run["pandas_read_seconds"] = round(time.perf_counter() - pandas_started, 2)
        classify_started, classify_cpu = time.perf_counter(), cpu_seconds()
        pandas_counts = clean_counts(classify_all(raw, settings.dbt_project_dir))
        run["pandas_classify_seconds"] = round(time.perf_counter() - classify_started, 2)
        run["pandas_classify_cpu_seconds"] = round(cpu_seconds() - classify_cpu, 2)
        run["pandas_seconds"] = round(time.perf_counter() - pandas_started, 2)
        del raw
        with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
            dbt_counts = reason_counts(con, entities)
        assert floor_counts == dbt_counts, f"floor counts differ from dbt: {floor_counts} vs {dbt_counts}"
        assert pandas_counts == dbt_counts, f"pandas counts differ from dbt: {pandas_counts} vs {dbt_counts}"
        run["ratios"] = {
            "dbt_build_over_floor": round(run["dbt_build_seconds"] / run["floor_seconds"], 2),
            "dbt_cleaning_models_over_floor_cleaning": round(
                run["dbt_node_seconds"]["cleaning_models"] / max(run["floor_cleaning_seconds"], 0.01), 2
            ),
            "pandas_over_floor_cleaning": round(
                run["pandas_classify_seconds"] / max(run["floor_cleaning_seconds"], 0.01), 1
            ),
            "pandas_over_dbt_build": round(run["pandas_seconds"] / run["dbt_build_seconds"], 2),
        }
        runs.append(run)
    ratios = {key: median([r["ratios"][key] for r in runs]) for key in runs[0]["ratios"]}
    return {
        "run_date": run_date.isoformat(),
        "raw_rows": raw_rows,
        "prepare_seconds": prepare_seconds,
        "first_parse_seconds": parse.elapsed_seconds,  # untimed in the builds below
        "counts": dbt_counts,
        "counts_equal": True,  # asserted above for every repeat: dbt == floor == pandas
        "medians": {
            key: median([r[key] for r in runs])
            for key in (
                "dbt_build_seconds",
                "floor_seconds",
                "floor_cleaning_seconds",
                "pandas_seconds",
                "pandas_classify_seconds",
            )
        },
        "ratios": ratios,
        "runs": runs,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser)
    parser.add_argument("--repeats", type=int, default=3)
    add_shop_arguments(parser, users=30000, products=2000, days=30)
    parser.add_argument("--skip-online-retail", action="store_true")
    parser.add_argument("--reuse", action="store_true", help="keep the ingested scratch data roots of an earlier run")
    args = parser.parse_args(argv)
    datasets: dict[str, tuple[Callable[[Settings], None], date]] = {}
    online_retail = Settings().datasets_dir / "online-retail" / "by-day"
    if not args.quick and not args.skip_online_retail and online_retail.is_dir():
        datasets["online-retail-x3"] = (write_online_retail_x3, date(2013, 12, 9))
    config = shop_config(args)
    datasets["demo-tiny" if args.quick else f"demo-{config.users}u"] = (write_demo(config), last_day(config))
    repeats = 1 if args.quick else args.repeats
    results = {
        name: run_dataset(name, write, run_date, repeats, args.reuse, args.quick)
        for name, (write, run_date) in datasets.items()
    }

    rows = []
    for name, result in results.items():
        m, r = result["medians"], result["ratios"]
        rows.append(
            [
                name,
                sum(result["raw_rows"].values()),
                m["dbt_build_seconds"],
                m["floor_seconds"],
                m["floor_cleaning_seconds"],
                m["pandas_classify_seconds"],
                r["dbt_build_over_floor"],
                r["dbt_cleaning_models_over_floor_cleaning"],
                r["pandas_over_floor_cleaning"],
            ]
        )
    print_table(
        f"Cleaning: dbt vs single-SQL floor vs pandas (median of {repeats}; seconds; counts asserted equal)",
        [
            "dataset",
            "raw rows",
            "dbt build",
            "floor",
            "floor clean",
            "pandas clean",
            "dbt/floor",
            "dbt clean/floor clean",
            "pandas/floor clean",
        ],
        rows,
    )
    path = write_results(
        "cleaning",
        args,
        {
            "targets": {"dbt_over_floor_max": TARGET_FLOOR_RATIO, "pandas_over_floor_min": TARGET_PANDAS_SPEEDUP},
            "datasets": results,
        },
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
