"""Benchmark: our ALS training vs a bare ``implicit`` call on the same matrix (and Spark MLlib ALS, if it runs).

* **ours**: ``create_recommender("als").fit(matrix)`` — the family the nightly stage trains (default parameters:
  64 factors, 15 iterations, CG solver), including its thread pinning;
* **bare**: ``implicit.cpu.als.AlternatingLeastSquares(...).fit(csr)`` with the same parameters and matrix;
* **spark** (optional, ``--spark-python /path/to/venv/bin/python``): ``pyspark.ml.recommendation.ALS``
  (implicitPrefs, same rank/iterations/regularisation/alpha) on the same triples, local[*], in that interpreter.
  pyspark is not a project dependency; install it into a separate venv to try this.

The matrix is the all-time interaction matrix of a built data root (``--home``, e.g. a scale run's warehouse),
read exactly as the recommender stage reads it, or, without ``--home``, a synthetic power-law matrix.

    .venv/bin/python bench/als.py                             # synthetic: 100,000 users x 20,000 items, ~2M nnz
    .venv/bin/python bench/als.py --home /tmp/shopflow-bench-scale/events-10M --date 2026-03-31
    .venv/bin/python bench/als.py --spark-python /tmp/spark-venv/bin/python
    .venv/bin/python bench/als.py --quick                     # tiny synthetic matrix: CI smoke run

Writes ``bench/results/als[-quick].json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from datetime import date
from pathlib import Path

from harness import add_common_arguments, median, print_table, write_results

from shopflow.settings import Settings, configure_runtime

SPARK_SCRIPT = """
import json, sys, time
from pyspark.sql import SparkSession
from pyspark.ml.recommendation import ALS
params = json.loads(sys.argv[2])
started = time.perf_counter()
spark = (SparkSession.builder.master("local[*]").config("spark.driver.memory", "6g")
         .config("spark.ui.enabled", "false").getOrCreate())
spark.sparkContext.setLogLevel("ERROR")
frame = spark.read.csv(sys.argv[1], schema="user INT, item INT, rating FLOAT").cache()
frame.count()
ready = time.perf_counter()
ALS(rank=params["factors"], maxIter=params["iterations"], regParam=params["regularization"], alpha=params["alpha"],
    implicitPrefs=True, userCol="user", itemCol="item", ratingCol="rating", seed=42).fit(frame)
fitted = time.perf_counter()
print(json.dumps({"startup_and_load_seconds": round(ready - started, 2), "fit_seconds": round(fitted - ready, 2)}))
spark.stop()
"""


def synthetic_matrix(users: int, items: int, nnz: int, seed: int = 7):
    """A users × items interaction matrix with power-law item popularity and user activity."""
    import numpy as np
    import pandas as pd

    from shopflow.models.interactions import InteractionMatrix

    rng = np.random.default_rng(seed)
    item_popularity = 1 / np.arange(1, items + 1) ** 0.8
    user_activity = rng.lognormal(0, 1, users)
    rows = rng.choice(users, nnz, p=user_activity / user_activity.sum())
    columns = rng.choice(items, nnz, p=item_popularity / item_popularity.sum())
    frame = pd.DataFrame(
        {"user_id": rows.astype(str), "product_id": columns.astype(str), "weight": rng.integers(1, 10, nnz)}
    )
    return InteractionMatrix.from_frame(frame, np.arange(items).astype(str))


def warehouse_matrix(home: Path, run_date: date):
    """The all-time interaction matrix of a built data root, read as the recommender stage reads it."""
    from shopflow.models.pipeline import read_inputs

    events, _ = read_inputs(Settings(home=home), run_date)
    return events.window(None, None)


def fit_ours(matrix) -> float:
    from shopflow.models.recommenders import create_recommender

    started = time.perf_counter()
    create_recommender("als").fit(matrix)
    return time.perf_counter() - started


def fit_bare(matrix, params: dict) -> float:
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    started = time.perf_counter()
    with threadpool_limits(limits=1, user_api="blas"):
        AlternatingLeastSquares(**params, num_threads=0).fit(matrix.user_items, show_progress=False)
    return time.perf_counter() - started


def fit_spark(spark_python: str, matrix, params: dict) -> dict:
    import numpy as np

    coo = matrix.user_items.tocoo()
    with tempfile.TemporaryDirectory() as scratch:
        triples = Path(scratch) / "triples.csv"
        np.savetxt(triples, np.column_stack([coo.row, coo.col, coo.data]), fmt=["%d", "%d", "%.4f"], delimiter=",")
        started = time.perf_counter()
        process = subprocess.run(
            [spark_python, "-c", SPARK_SCRIPT, str(triples), json.dumps(params)], capture_output=True, text=True
        )
        wall = round(time.perf_counter() - started, 2)
    if process.returncode != 0:
        return {"error": process.stderr.strip().splitlines()[-1] if process.stderr.strip() else "failed"}
    return json.loads(process.stdout.strip().splitlines()[-1]) | {"process_wall_seconds": wall}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--home", type=Path, help="a built data root to read the interaction matrix from")
    parser.add_argument("--date", type=date.fromisoformat, help="its run date (with --home)")
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--nnz", type=int, default=2_000_000)
    parser.add_argument("--spark-python", help="an interpreter with pyspark installed (optional)")
    args = parser.parse_args(argv)
    configure_runtime()
    from shopflow.models.recommenders import create_recommender

    params = {
        key: value
        for key, value in vars(create_recommender("als").params).items()
        if key in ("factors", "regularization", "alpha", "iterations", "random_state")
    }
    if args.home:
        matrix, source = warehouse_matrix(args.home, args.date), f"warehouse {args.home} up to {args.date}"
    elif args.quick:
        matrix, source = synthetic_matrix(2_000, 500, 20_000), "synthetic 2,000 x 500"
    else:
        matrix, source = (
            synthetic_matrix(args.users, args.items, args.nnz),
            f"synthetic {args.users:,} x {args.items:,}",
        )
    repeats = 1 if args.quick else args.repeats
    runs = [{"ours": round(fit_ours(matrix), 2), "bare": round(fit_bare(matrix, params), 2)} for _ in range(repeats)]
    for run in runs:
        run["ratio"] = round(run["ours"] / run["bare"], 3)
    spark = fit_spark(args.spark_python, matrix, params) if args.spark_python else None

    shape = {"users": matrix.n_users, "items": matrix.n_items, "nnz": int(matrix.user_items.nnz)}
    rows = [
        ["ours (create_recommender('als').fit)", median([r["ours"] for r in runs]), median([r["ratio"] for r in runs])],
        ["bare implicit", median([r["bare"] for r in runs]), 1.0],
    ]
    if spark and "fit_seconds" in spark:
        bare = median([r["bare"] for r in runs])
        rows.append(["spark mllib ALS (fit only)", spark["fit_seconds"], round(spark["fit_seconds"] / bare, 2)])
    print_table(
        f"ALS training, {source}: {shape['users']:,} users x {shape['items']:,} items, {shape['nnz']:,} nnz "
        f"(median of {repeats}; seconds; ratio vs bare)",
        ["trainer", "fit s", "ratio"],
        rows,
    )
    path = write_results(
        "als",
        args,
        {"matrix": shape | {"source": source}, "params": params, "repeats": repeats, "runs": runs, "spark": spark},
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
