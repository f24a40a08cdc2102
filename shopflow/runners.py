"""How the nightly fans out: the Prefect task runner chosen by settings, and shards of a model stage's work.

``local`` runs every task in the flow's process (Prefect's thread pool); ``dask`` sends the model stages' shards to
a Dask cluster — a LocalCluster of ``dask_workers`` single-threaded processes, or the scheduler at ``dask_address``.
Dask workers run Prefect tasks and report to the Prefect API, so they need a running server: without
``PREFECT_API_URL`` every worker would start an ephemeral server of its own.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from shopflow.settings import Settings

Item = TypeVar("Item")
Result = TypeVar("Result")


class TaskRunnerError(RuntimeError):
    """The configured task runner cannot run here (e.g. Dask without a Prefect server)."""


def build_task_runner(settings: Settings):
    """The Prefect task runner for ``settings.task_runner`` (imports prefect-dask only when asked for)."""
    if settings.task_runner == "local":
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner()
    from prefect_dask import DaskTaskRunner

    if settings.dask_address:
        return DaskTaskRunner(address=settings.dask_address)
    # Worker processes inherit this process's environment when the night starts the cluster (PREFECT_API_URL
    # included); one torch thread each, since the workers already use every core between them.
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": settings.dask_workers,
            "threads_per_worker": 1,
            "processes": True,
            "dashboard_address": ":0",  # any free port: two nights never collide
            "env": {"OMP_NUM_THREADS": "1"},
        }
    )


def check_task_runner(settings: Settings) -> None:
    """Refuse a Dask night without a Prefect server (each worker would start an ephemeral server of its own)."""
    if settings.task_runner == "dask" and not os.environ.get("PREFECT_API_URL"):
        raise TaskRunnerError(
            "the dask task runner needs a running Prefect server: start one with `shopflow serve` (or let "
            "`shopflow nightly` start it) or export PREFECT_API_URL"
        )


def shard_count(settings: Settings) -> int:
    """Shards per model stage: one per Dask worker, one in-process."""
    return settings.dask_workers if settings.task_runner == "dask" else 1


def shards(items: Sequence[Item], count: int) -> list[list[Item]]:
    """``items`` in at most ``count`` contiguous, non-empty shards of near-equal size (none when empty)."""
    size, extra = divmod(len(items), max(1, count))
    bounds, start = [], 0
    for index in range(min(count, len(items))):
        end = start + size + (index < extra)
        bounds.append(list(items[start:end]))
        start = end
    return bounds


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def map_in_threads(
    function: Callable[[Item], Result], items: Iterable[Item], threads: int | None = None
) -> list[Result]:
    """``[function(item) for item in items]``, in order, on ``threads`` threads (default: one per usable CPU).

    For work that releases the GIL while it computes (numpy and scipy products, partitions, implicit's Cython
    loops) and runs single-threaded on its own: BLAS is pinned to one thread for implicit, see ``RUNTIME_DEFAULTS``.
    """
    items = list(items)
    threads = min(threads or usable_cpus(), len(items))
    if threads <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(threads, thread_name_prefix="shopflow-map") as pool:
        return list(pool.map(function, items))
