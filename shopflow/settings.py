"""The one settings object: every path lives under one git-ignored data root (``SHOPFLOW_HOME``)."""

from __future__ import annotations

import atexit
import gc
import os
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shopflow.allocator import configure_malloc

#: The repository checkout (the project is installed editable, so this is where dbt_project/ lives).
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Configuration read from ``SHOPFLOW_*`` environment variables (or a ``.env`` file).

    Only ``home`` is needed in practice; every runtime path below is derived from it.
    """

    model_config = SettingsConfigDict(env_prefix="SHOPFLOW_", env_file=".env", extra="ignore")

    home: Path = Field(Path("var"), description="Data root; relative paths resolve against the working directory.")
    dbt_project_dir: Path = Field(PROJECT_ROOT / "dbt_project", description="The dbt project (models, tests, seeds).")
    datasets_dir: Path = Field(
        PROJECT_ROOT.parent / "shared" / "datasets",
        description="Read-only real datasets for imports and benchmarks.",
    )
    timezone: str = Field("UTC", description="Timezone of the nightly schedule.")
    nightly_cron: str = Field("0 2 * * *", description="When the nightly run starts (cron, in `timezone`).")
    prefect_port: int = Field(4200, description="Port of the local Prefect server that `shopflow serve` uses.")
    duckdb_threads: int = Field(2, ge=1, description="Threads DuckDB may use for ingest, dbt and publish.")
    duckdb_memory_limit: str = Field(
        "6GB",
        description="DuckDB memory cap, e.g. '8GB'; spills to disk beyond it. 6GB keeps a 50M-event night's dbt"
        " process under 8 GB at no cost in time (BENCHMARKS.md §3).",
    )
    publish_memory_limit: str = Field(
        "1GB",
        description="DuckDB memory cap while publishing the snapshot: the copy streams, so a small cap costs no time"
        " and keeps the night's peak memory down.",
    )
    promotion_margin_ndcg: float = Field(
        0.005,
        ge=0,
        description="Least mean NDCG@10 gain (absolute, on the night's holdout) for a challenger to replace the"
        " champion automatically; its paired 95% bootstrap interval must also lie above zero.",
    )
    recommender_compare_every_days: int = Field(
        7,
        ge=1,
        description="Compare every recommender candidate when the last comparison is this many days old (1: nightly);"
        " other nights refit the champion's configuration.",
    )
    recommender_compare_growth: float = Field(
        0.25,
        ge=0,
        description="Also compare when the user × product interactions grew by more than this share since the last"
        " comparison.",
    )
    recommender_warm_start_iterations: int = Field(
        2,
        ge=0,
        description="ALS iterations of a refit night, which starts from the previous night's factors (converged"
        " in 1–2: one more day barely moves them); 0: refits start from random factors and run all of the model's"
        " iterations. Comparison nights always start from random factors.",
    )
    recommender_max_users: int = Field(
        20_000,
        ge=10,
        description="Compare recommender candidates on at most this many users (a uniform sample, all their"
        " events): bounds the comparison's cost on large shops; the night's model is fitted on every user.",
    )
    registry_keep_latest: int = Field(
        14,
        ge=1,
        description="Registered recommender versions kept after each night, newest first (a night registers one or"
        " two, ~200 MB each at 10M events); aliased versions and the champion's rollback history are kept as well.",
    )
    registry_rollback_depth: int = Field(
        7,
        ge=0,
        description="Earlier champions kept however old, so `shopflow models rollback` can walk back this many times.",
    )
    mlflow_ui_port: int = Field(5000, description="Port of `shopflow ui mlflow` (bound to 127.0.0.1).")
    task_runner: Literal["local", "dask"] = Field(
        "local",
        description="Where the model stages' shards run: `local` (in the flow's process) or `dask` (a Dask cluster;"
        " needs a running Prefect server, which `shopflow nightly` starts when none is configured).",
    )
    dask_address: str | None = Field(
        None, description="Scheduler address of an existing Dask cluster; unset: a LocalCluster per night."
    )
    dask_workers: int = Field(2, ge=1, description="Worker processes of the LocalCluster, and shards per model stage.")
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="Where the model stages run: `auto` (CUDA when available, else CPU) or forced."
    )
    encoder_precision: Literal["auto", "float32", "bfloat16"] = Field(
        "auto",
        description="Precision of the MiniLM sentence encoder (product embeddings, moderation): `auto` = bfloat16"
        " on CUDA or on a CPU with native bfloat16 (AVX512-BF16/AMX; ~3x faster than float32, cosine to float32"
        " >= 0.996), float32 elsewhere.",
    )
    description_model: str = Field(
        "qwen2.5-coder-0.5b",
        description="Language model of the description stage: `qwen2.5-coder-0.5b` (default; faithful, ~4-5 s"
        " per product on 2 CPU cores at batch 16), `smollm2-135m` (3-4x faster, invents more: tests and quick"
        " demos; the guard still applies) or the path of a local Hugging Face model folder.",
    )
    language_model_precision: Literal["auto", "float32", "bfloat16"] = Field(
        "auto",
        description="Precision of the language models (descriptions, moderation judge): `auto` = bfloat16 on CUDA or"
        " on a CPU with native bfloat16 (AVX512-BF16/AMX), float32 elsewhere: torch emulates bfloat16 there, and 16"
        " Qwen descriptions took 251 s instead of 62 s. Each precision has its own dequantised cache (Qwen: 1.2 GB"
        " in bfloat16, 2.4 GB in float32).",
    )
    description_budget: int = Field(
        100, ge=0, description="Products the description stage generates per night (new first, then most viewed)."
    )
    description_batch_size: int = Field(
        16,
        ge=1,
        description="Prompts generated together (greedy, left-padded); 16 used 53-74% of the CPU's matmul peak.",
    )
    moderation_judge_budget: int = Field(
        0, ge=0, description="Grey-zone texts the LLM judge re-reads per night in the moderation stage (0: no judge)."
    )
    moderation_judge_model: str = Field(
        "qwen2.5-coder-0.5b", description="Language model of the moderation judge (same choices as description_model)."
    )

    language_model_cache: Path | None = Field(
        None,
        description="Where shipped GGUF language models are dequantised once and cached (Qwen: 1.2 GB in bfloat16,"
        " 2.4 GB in float32);"
        " default `<home>/cache`. Point several data roots at one folder to build it once.",
    )

    def model_post_init(self, __context: object) -> None:
        self.home = self.home.expanduser().resolve()

    # ---------- the data root's layout
    @cached_property
    def landing_dir(self) -> Path:
        """Daily drops: ``landing/<entity>/<YYYY-MM-DD>.<csv|csv.gz|parquet>``."""
        return self.home / "landing"

    @cached_property
    def warehouse_path(self) -> Path:
        """The live warehouse (raw, staging, marts); only the nightly run writes it."""
        return self.home / "warehouse.duckdb"

    @cached_property
    def analytics_path(self) -> Path:
        """The published read-only snapshot analysts query."""
        return self.home / "analytics.duckdb"

    @cached_property
    def language_model_cache_dir(self) -> Path:
        """Dequantised language models (``language-models/<name>-<sha>-<dtype>/``)."""
        return (self.language_model_cache or self.cache_dir).expanduser().resolve()

    @cached_property
    def prefect_home(self) -> Path:
        return self.home / "prefect"

    @cached_property
    def mlflow_dir(self) -> Path:
        return self.home / "mlflow"

    @cached_property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    @cached_property
    def recommender_factors_dir(self) -> Path:
        """The newest nights' ALS factors (``<run date>.npz``), where the next refit night starts from."""
        return self.cache_dir / "recommender-factors"

    @cached_property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    @cached_property
    def dbt_target_dir(self) -> Path:
        return self.home / "dbt" / "target"

    @cached_property
    def dbt_log_dir(self) -> Path:
        return self.home / "dbt" / "logs"

    def ensure_dirs(self) -> None:
        for path in (self.landing_dir, self.prefect_home, self.cache_dir, self.reports_dir, self.dbt_log_dir):
            path.mkdir(parents=True, exist_ok=True)


#: Quiet, offline, 2-core-friendly defaults. Applied with ``setdefault`` so a value you export always wins.
RUNTIME_DEFAULTS = {
    "OPENBLAS_NUM_THREADS": "1",  # implicit: a multi-threaded BLAS makes ALS up to 10x slower
    "OMP_WAIT_POLICY": "PASSIVE",  # torch: spinning OpenMP threads were 8x slower on a busy 2-core box
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",  # transformers' "Loading weights" bars; ours are shopflow.progress
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    "DO_NOT_TRACK": "1",
    "GX_ANALYTICS_ENABLED": "false",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    "PREFECT_LOGGING_TO_API_BATCH_INTERVAL": "0.5",
    "PREFECT_LOGGING_EXTRA_LOGGERS": "shopflow",  # our module loggers show up in Prefect run logs
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",  # ...and stay quiet when called outside a flow
}


def configure_runtime(settings: Settings | None = None) -> Settings:
    """Export the runtime defaults and the project-local Prefect home, raise glibc's malloc thresholds
    (:mod:`shopflow.allocator`) and freeze the objects at exit; call before heavy imports.

    The freeze (``gc.freeze`` as an exit handler, once per process): after a night the process holds ~1M objects
    (torch, transformers, Great Expectations, MLflow, Prefect), and Python's shutdown ran full collections over
    all of them while tearing the modules down, 3 s after every night on the 2-core box. Frozen, they leave those
    collections nothing to traverse; the other exit handlers still run, and the memory goes with the process.
    """
    settings = settings or Settings()
    for key, value in RUNTIME_DEFAULTS.items():
        os.environ.setdefault(key, value)
    configure_malloc()
    atexit.unregister(gc.freeze)  # registered once, however often this runs
    atexit.register(gc.freeze)
    os.environ.setdefault("PREFECT_HOME", str(settings.prefect_home))
    settings.prefect_home.mkdir(parents=True, exist_ok=True)
    return settings
