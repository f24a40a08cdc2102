"""Benchmark description generation: load time, tokens/s, texts/s, and the share of the CPU's compute bound used.

    .venv/bin/python bench/generation.py [--model qwen2.5-coder-0.5b] [--products 16] [--batch-sizes 1 8 16]

Compute bound: a forward pass costs about 2 · P FLOPs per token, P = parameters in matrix multiplications (all but
the input embedding table). Measured FLOP/s is the best of several bf16 (the model's dtype) matrix products of
the model's own shapes and of a 2048² square. For each batch size the report gives

- ``generated_tokens_per_second`` and ``texts_per_second`` (what the nightly budget is planned with),
- ``compute_bound_share``: 2 · P · (prompt + generated tokens) / measured FLOP/s / wall seconds, i.e. the share
  of the machine's matmul throughput that the model's useful work used (padding counts as waste),
- ``decode_compute_bound_share``: the same for the generated tokens alone,

plus the guard's pass rate of the first attempt. The machine's load average is recorded: other processes on
the 2 cores make every number pessimistic. Report: stdout and ``bench/results/generation.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import date
from pathlib import Path

from shopflow.settings import Settings, configure_runtime

RESULTS_DIR = Path(__file__).resolve().parent / "results"

BASE_PRODUCTS = (
    (
        "Nordic Trail 45L Hiking Backpack",
        "Outdoor > Backpacks",
        "Nordic Trail",
        "89.99",
        {
            "volume": "45 L",
            "material": "ripstop nylon",
            "weight": "1.2 kg",
            "color": "forest green",
            "features": "rain cover, hydration sleeve, padded hip belt",
        },
    ),
    (
        "Lumio Smart LED Desk Lamp",
        "Lighting > Desk Lamps",
        "Lumio",
        "39.90",
        {
            "brightness levels": "5",
            "color temperature": "2700-6500 K",
            "control": "touch",
            "port": "USB-C",
            "color": "white",
        },
    ),
    (
        "Acme Electric Kettle 1.7 L",
        "Kitchen > Kettles",
        "Acme",
        "29.99",
        {
            "power": "2200 W",
            "material": "stainless steel",
            "safety": "auto shut-off, boil-dry protection",
            "BPA-free": "yes",
        },
    ),
    (
        "Vexa Men's Running Shoes",
        "Sports > Shoes",
        "Vexa",
        "74.50",
        {
            "upper": "breathable mesh",
            "sole": "cushioned EVA",
            "sizes": "40-46",
            "color": "black/red",
            "weight": "280 g per shoe",
        },
    ),
    (
        "Kobo Organic Green Tea, 100 bags",
        "Food > Tea",
        "Kobo",
        "6.49",
        {"type": "sencha", "origin": "Japan", "certification": "EU organic", "caffeine": "medium"},
    ),
)
COLORS = ("navy", "sand", "grey", "red")


def bench_products(count: int):
    """``count`` products: the five of models.md §2a, then colour variants of them."""
    from shopflow.models.descriptions.prompts import ProductFacts

    products = []
    for i in range(count):
        title, category, brand, price, attributes = BASE_PRODUCTS[i % len(BASE_PRODUCTS)]
        variant = i // len(BASE_PRODUCTS)
        if variant:
            attributes = {**attributes, "color": COLORS[(variant - 1) % len(COLORS)]}
        products.append(ProductFacts(f"B{i:03d}", title, category, brand, price, "EUR", attributes))
    return products


def measured_matmul_flops(hidden: int, intermediate: int, dtype) -> dict[str, float]:
    """Best FLOP/s of bf16 matrix products: the model's MLP shapes at 256 and 2048 rows, and a 2048² square."""
    import torch

    shapes = {
        "mlp_256_rows": (256, hidden, intermediate),
        "mlp_2048_rows": (2048, hidden, intermediate),
        "square_2048": (2048, 2048, 2048),
    }
    result = {}
    for name, (rows, inner, cols) in shapes.items():
        left, right = torch.randn(rows, inner, dtype=dtype), torch.randn(inner, cols, dtype=dtype)
        best = float("inf")
        for _ in range(5):
            began = time.perf_counter()
            left @ right
            best = min(best, time.perf_counter() - began)
        result[name] = 2 * rows * inner * cols / best
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="qwen2.5-coder-0.5b")
    parser.add_argument("--products", type=int, default=16)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 16])
    parser.add_argument("--max-new-tokens", type=int, default=80)
    args = parser.parse_args()
    settings = configure_runtime(Settings())

    import torch

    from shopflow.models.descriptions.guard import guard_descriptions
    from shopflow.models.descriptions.language_model import GenerationStats, load_language_model
    from shopflow.models.descriptions.prompts import description_conversation

    began = time.perf_counter()
    model = load_language_model(args.model, settings.cache_dir, precision=settings.language_model_precision)
    load_seconds = time.perf_counter() - began
    config = model.model.config
    flops = measured_matmul_flops(config.hidden_size, config.intermediate_size, model.model.dtype)
    peak = max(flops.values())
    parameters = model.matmul_parameter_count()
    products = bench_products(args.products)
    conversations = [description_conversation(product) for product in products]
    runs = []
    for batch_size in args.batch_sizes:
        model.stats = GenerationStats()
        load_average = os.getloadavg()[0]
        texts = model.generate(conversations, args.max_new_tokens, batch_size)
        stats = model.stats
        outcomes = guard_descriptions(products, texts, moderator=None)
        work = 2 * parameters * (stats.prompt_tokens + stats.generated_tokens)
        runs.append(
            {
                "batch_size": batch_size,
                "load_average_1min": round(load_average, 2),
                "seconds": round(stats.seconds, 1),
                "prompt_tokens": stats.prompt_tokens,
                "generated_tokens": stats.generated_tokens,
                "generated_tokens_per_second": round(stats.generated_tokens_per_second, 2),
                "texts_per_second": round(stats.sequences_per_second, 3),
                "compute_bound_share": round(work / peak / stats.seconds, 3),
                "decode_compute_bound_share": round(2 * parameters * stats.generated_tokens / peak / stats.seconds, 3),
                "guard_pass_rate_first_attempt": round(sum(o.passed for o in outcomes) / len(outcomes), 3),
                "example": texts[0],
            }
        )
        print(json.dumps(runs[-1]), flush=True)
    report = {
        "date": date.today().isoformat(),
        "model": model.identity.as_dict(),
        "device": model.device,
        "dtype": str(model.model.dtype),
        "torch_threads": torch.get_num_threads(),
        "load_seconds": round(load_seconds, 1),
        "matmul_parameters": parameters,
        "measured_matmul_gflops": {name: round(value / 1e9, 1) for name, value in flops.items()},
        "runs": runs,
    }
    out = RESULTS_DIR / "generation.json"
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps({key: value for key, value in report.items() if key != "runs"}, indent=2))
    print(f"written: {out}")


if __name__ == "__main__":
    main()
