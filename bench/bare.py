"""The bare library work of a night, in one plain process: the floor of what the pipeline could cost.

``python bench/bare.py --landing DIR --until D --manifest M --out DIR`` (the parent benchmark starts it as a
child so that its wall time includes interpreter start and imports, like a night's) does, with no shopflow
stage code:

1. DuckDB: every landing CSV up to ``D`` into raw (one ``read_csv`` per entity) and the same cleaning as the
   night (the dbt project's compiled SQL, :mod:`sql_floor`);
2. one ``implicit`` ALS fit (the pipeline's default ALS parameters) on the user × product weights of
   ``marts.fct_interactions``;
3. one transformers encoder pass (all-MiniLM-L6-v2, mean pooling, batch 64, in the night's precision) over every
   product text of ``marts.dim_products``;
4. with ``--describe N``: one greedy ``generate`` pass (batches of 16, at most 80 new tokens, as the night's
   description stage) over the first N products' description prompts, with the night's language model loaded by
   plain transformers from its dequantised folder (``--language-model-folder``). The night also guards every text,
   retries rejected ones and moderates them: that is extra work with no bare counterpart.

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
GENERATION_BATCH = 16  # the description stage's default batch (SHOPFLOW_DESCRIPTION_BATCH_SIZE)
GENERATION_MAX_NEW_TOKENS = 80  # DescriptionConfig.max_new_tokens


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


def encode_texts(texts: list[str], precision: str) -> dict:
    """A plain transformers loop: tokenize, forward, mean-pool, normalise, batch by batch, the model in
    ``precision`` (float32 or bfloat16). Seconds for load and for encoding, and texts per second."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    from shopflow.models.embeddings import minilm_directory

    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(minilm_directory(), local_files_only=True)
    model = AutoModel.from_pretrained(minilm_directory(), local_files_only=True, dtype=getattr(torch, precision))
    model = model.eval()
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
            hidden = model(**tokens).last_hidden_state.float()
            mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9), dim=-1)
    encoded = time.perf_counter() - loaded
    return {
        "load_seconds": round(loaded - started, 2),
        "encode_seconds": round(encoded, 2),
        "texts": len(texts),
        "texts_per_second": round(len(texts) / encoded, 1) if encoded > 0 else None,
        "precision": precision,
    }


def generate_texts(products, folder: Path) -> dict:
    """Plain transformers generation: the description prompts of ``products`` (a dim_products frame), greedy, in
    batches of ``GENERATION_BATCH`` sorted by length. Seconds for load and for generating, tokens generated."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from shopflow.models.descriptions.prompts import description_conversation
    from shopflow.models.descriptions.stage import facts_from_frame

    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True, padding_side="left")
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    # dtype "auto": the cache's own, which overhead.py dequantised in the night's precision
    model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True, dtype="auto").eval()
    loaded = time.perf_counter()
    prompts = sorted(
        (
            tokenizer.apply_chat_template(
                list(description_conversation(facts)), add_generation_prompt=True, tokenize=False
            )
            for facts in facts_from_frame(products)
        ),
        key=len,
    )
    vocabulary = tokenizer.get_vocab()
    stop_ids = [vocabulary[token] for token in ("<|im_end|>", "<|endoftext|>") if token in vocabulary]
    generated = 0
    with torch.inference_mode():
        for start in range(0, len(prompts), GENERATION_BATCH):
            batch = prompts[start : start + GENERATION_BATCH]
            tokens = tokenizer(batch, return_tensors="pt", padding=True, add_special_tokens=False)
            output = model.generate(
                **tokens,
                do_sample=False,
                max_new_tokens=GENERATION_MAX_NEW_TOKENS,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=stop_ids,
            )
            generated += int((output[:, tokens["input_ids"].shape[1] :] != tokenizer.pad_token_id).sum())
    seconds = time.perf_counter() - loaded
    return {
        "load_seconds": round(loaded - started, 2),
        "generate_seconds": round(seconds, 2),
        "products": len(prompts),
        "generated_tokens": generated,
    }


def run_bare(
    landing: Path,
    until: str,
    manifest: Path,
    project_dir: Path,
    out: Path,
    precision: str = "float32",
    describe: int = 0,
    language_model_folder: Path | None = None,
) -> dict:
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
        products = con.execute("select * from marts.dim_products order by product_id").df()
        texts = [str(text) for text in product_texts(products)]
        seconds["read_matrix_and_texts"] = time.perf_counter() - matrix_started
    seconds["als_fit"] = fit_als(user_items)
    encoder = encode_texts(texts, precision)
    seconds["encoder_load"] = encoder["load_seconds"]
    seconds["encode"] = encoder["encode_seconds"]
    generation = None
    if describe:
        generation = generate_texts(products.head(describe), language_model_folder)
        seconds["generator_load"] = generation["load_seconds"]
        seconds["generate"] = generation["generate_seconds"]
    return {
        "seconds": {part: round(value, 2) for part, value in seconds.items()},
        "clean_sql_layer_seconds": layer_seconds,
        "raw_rows": raw_rows,
        "matrix": {"users": user_items.shape[0], "products": user_items.shape[1], "nnz": int(user_items.nnz)},
        "encoder": encoder,
        "generation": generation,
        "pid": os.getpid(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--landing", type=Path, required=True)
    parser.add_argument("--until", required=True, help="last delivery day (YYYY-MM-DD)")
    parser.add_argument("--manifest", type=Path, required=True, help="manifest.json of the night's dbt build")
    parser.add_argument("--project-dir", type=Path, required=True, help="the dbt project (for the seeds)")
    parser.add_argument("--out", type=Path, required=True, help="scratch folder for the bare warehouse")
    parser.add_argument("--precision", default="float32", help="encoder precision: float32 or bfloat16")
    parser.add_argument("--describe", type=int, default=0, help="products to generate descriptions for")
    parser.add_argument("--language-model-folder", type=Path, help="dequantised language model (with --describe)")
    args = parser.parse_args()
    bare = run_bare(
        args.landing,
        args.until,
        args.manifest,
        args.project_dir,
        args.out,
        args.precision,
        args.describe,
        args.language_model_folder,
    )
    print(json.dumps(bare))


if __name__ == "__main__":
    main()
