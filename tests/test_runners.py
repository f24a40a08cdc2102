"""Task runner choice, sharding and device resolution."""

import threading

import pytest
from prefect.task_runners import ThreadPoolTaskRunner
from prefect_dask import DaskTaskRunner

from shopflow.runners import (
    TaskRunnerError,
    build_task_runner,
    check_task_runner,
    map_in_threads,
    shard_count,
    shards,
)
from shopflow.settings import Settings


def test_shards_are_contiguous_near_equal_and_never_empty() -> None:
    assert shards(list("abcdefg"), 3) == [["a", "b", "c"], ["d", "e"], ["f", "g"]]
    assert shards(list("ab"), 4) == [["a"], ["b"]]
    assert shards([], 2) == []
    assert shards(list("abc"), 1) == [["a", "b", "c"]]


def test_the_setting_chooses_the_task_runner_and_the_shard_count(settings: Settings) -> None:
    assert isinstance(build_task_runner(settings), ThreadPoolTaskRunner) and shard_count(settings) == 1
    dask = settings.model_copy(update={"task_runner": "dask", "dask_workers": 3})
    runner = build_task_runner(dask)
    assert isinstance(runner, DaskTaskRunner) and shard_count(dask) == 3
    assert runner.cluster_kwargs["n_workers"] == 3 and runner.cluster_kwargs["threads_per_worker"] == 1
    remote = dask.model_copy(update={"dask_address": "tcp://10.0.0.5:8786"})
    assert build_task_runner(remote).address == "tcp://10.0.0.5:8786"


def test_a_dask_night_without_a_prefect_server_is_refused(settings: Settings, monkeypatch) -> None:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    check_task_runner(settings)  # local: fine
    with pytest.raises(TaskRunnerError, match="needs a running Prefect server"):
        check_task_runner(settings.model_copy(update={"task_runner": "dask"}))
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api")
    check_task_runner(settings.model_copy(update={"task_runner": "dask"}))


def test_map_in_threads_keeps_the_order_and_runs_items_side_by_side() -> None:
    both_running = threading.Barrier(2, timeout=10)  # breaks (and the call raises) unless two items run at once

    def square(value: int) -> int:
        if value < 2:
            both_running.wait()
        return value * value

    assert map_in_threads(square, range(6), threads=2) == [0, 1, 4, 9, 16, 25]
    assert map_in_threads(square, [3], threads=2) == [9]
    assert map_in_threads(square, [], threads=2) == []
