"""The bare library work of a night, in one plain process: the floor of what the pipeline could cost.

``python bench/bare.py --landing DIR --until D --manifest M --out DIR`` (the parent benchmark starts it as a
child so that its wall time includes interpreter start and imports, like a night's) does, with no shopflow
stage code:

1. DuckDB: every landing CSV up to ``D`` into raw (one ``read_csv`` per entity) and the same cleaning as the
   night (the dbt project's compiled SQL, :mod:`sql_floor`);
2. one ``implicit`` ALS fit (the pipeline's default ALS parameters) on the user × product weights of
   ``marts.fct_interactions``;
3. one transformers encoder pass (all-MiniLM-L6-v2, mean pooling, batch 64) over every product text of
   ``marts.dim_products``;
4. generation: not measured yet (no LLM stage in the night; see BENCHMARKS.md).

It prints one JSON object: seconds per part and the sizes it worked on.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

ALS_PARAMS = {"factors": 64, "regularization": 0.05, "alpha": 1.0, "iterations": 15, "random_state": 42}
ENCODER_BATCH = 64
ENCODER_MAX_TOKENS = 256


def interaction_matrix(con):
    """users × products CSR of ``marts.fct_interactions.weight`` (positive weights only), float32."""
    import numpy as np
    from scipy import sparse

    frame = con.execute(
        """
        select dense_rank() over (order by user_id) - 1 as row, dense_rank() over (order by product_id) - 1 as col,
               weight
        from marts.fct_interactions where weight > 0
        """
    ).df()
    shape = (int(frame["row"].max()) + 1, int(frame["col"].max()) + 1)
    values = frame["weight"].to_numpy(np.float32)
    return sparse.csr_matrix((values, (frame["row"].to_numpy(), frame["col"].to_numpy())), shape=shape)


def fit_als(user_items) -> float:
    """One implicit ALS fit with one BLAS thread (as implicit asks); returns seconds."""
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    started = time.perf_counter()
    with threadpool_limits(limits=1, user_api="blas"):
        AlternatingLeastSquares(**ALS_PARAMS, num_threads=0).fit(user_items, show_progress=False)
    return time.perf_counter() - started


def encode_texts(texts: list[str]) -> dict:
    """A plain transformers loop: tokenize, forward, mean-pool, normalise, batch by batch. Seconds for load and
    for encoding, and texts per second."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    from shopflow.models.embeddings import minilm_directory

    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(minilm_directory(), local_files_only=True)
    model = AutoModel.from_pretrained(minilm_directory(), local_files_only=True).eval()
    loaded = time.perf_counter()
    with torch.inference_mode():
        for start in range(0, len(texts), ENCODER_BATCH):
            tokens = tokenizer(
                texts[start : start + ENCODER_BATCH],
                padding=True,
                truncation=True,
                max_length=ENCODER_MAX_TOKENS,
                return_tensors="pt",
            )
            hidden = model(**tokens).last_hidden_state
            mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9), dim=-1)
    encoded = time.perf_counter() - loaded
    return {
        "load_seconds": round(loaded - started, 2),
        "encode_seconds": round(encoded, 2),
        "texts": len(texts),
        "texts_per_second": round(len(texts) / encoded, 1) if encoded > 0 else None,
    }


def run_bare(landing: Path, until: str, manifest: Path, project_dir: Path, out: Path) -> dict:
    import duckdb
    from sql_floor import floor_statements, load_landing_bare, run_floor

    from shopflow.models.catalogue import product_texts
    from shopflow.settings import configure_runtime

    configure_runtime()  # the same thread settings as a night (one BLAS thread, passive OpenMP)
    seconds = {}
    out.mkdir(parents=True, exist_ok=True)
    database = out / "warehouse.duckdb"  # the file name is the catalog name the compiled SQL refers to
    database.unlink(missing_ok=True)
    started = time.perf_counter()
    with duckdb.connect(str(database)) as con:
        raw_rows = load_landing_bare(con, landing, until)
        seconds["load_raw"] = time.perf_counter() - started
        layer_seconds = run_floor(con, floor_statements(manifest, project_dir))
        seconds["clean_sql"] = time.perf_counter() - started - seconds["load_raw"]
        matrix_started = time.perf_counter()
        user_items = interaction_matrix(con)
        texts = [str(text) for text in product_texts(con.execute("select * from marts.dim_products").df())]
        seconds["read_matrix_and_texts"] = time.perf_counter() - matrix_started
    seconds["als_fit"] = fit_als(user_items)
    encoder = encode_texts(texts)
    seconds["encoder_load"] = encoder["load_seconds"]
    seconds["encode"] = encoder["encode_seconds"]
    return {
        "seconds": {part: round(value, 2) for part, value in seconds.items()},
        "clean_sql_layer_seconds": layer_seconds,
        "raw_rows": raw_rows,
        "matrix": {"users": user_items.shape[0], "products": user_items.shape[1], "nnz": int(user_items.nnz)},
        "encoder": encoder,
        "generation": None,  # no LLM stage in the night yet
        "pid": os.getpid(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--landing", type=Path, required=True)
    parser.add_argument("--until", required=True, help="last delivery day (YYYY-MM-DD)")
    parser.add_argument("--manifest", type=Path, required=True, help="manifest.json of the night's dbt build")
    parser.add_argument("--project-dir", type=Path, required=True, help="the dbt project (for the seeds)")
    parser.add_argument("--out", type=Path, required=True, help="scratch folder for the bare warehouse")
    args = parser.parse_args()
    print(json.dumps(run_bare(args.landing, args.until, args.manifest, args.project_dir, args.out)))


if __name__ == "__main__":
    main()
