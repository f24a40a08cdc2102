"""The dask task runner for real: a local Prefect server, a 2-worker LocalCluster, the embedding stage sharded."""

import os
import socket
from datetime import date
from pathlib import Path

import httpx
import numpy as np
import pytest

from shopflow.demo import DemoConfig, generate_demo_shop
from shopflow.flows.nightly import nightly
from shopflow.models.catalogue import product_texts
from shopflow.models.embeddings import MiniLMEncoder, embed_texts
from shopflow.models.pipeline import read_inputs
from shopflow.runners import build_task_runner
from shopflow.server import local_prefect_api
from shopflow.settings import Settings


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_a_dask_night_shards_the_embeddings_over_two_workers_against_a_running_server(
    settings: Settings, monkeypatch
) -> None:
    generate_demo_shop(DemoConfig(products=60, users=80, days=10, seed=3, start=date(2026, 4, 1)), settings.landing_dir)
    monkeypatch.setenv("SHOPFLOW_TASK_RUNNER", "dask")
    monkeypatch.setenv("SHOPFLOW_DASK_WORKERS", "2")
    monkeypatch.setenv("SHOPFLOW_PREFECT_PORT", str(free_port()))
    dask_settings = Settings()

    with local_prefect_api(dask_settings) as api:
        state = nightly.with_options(task_runner=build_task_runner(dask_settings))(
            run_date=date(2026, 4, 10), return_state=True
        )
        assert state.is_completed(), state.message
        task_runs = httpx.post(
            f"{api}/task_runs/filter",
            json={"flow_runs": {"id": {"any_": [str(state.state_details.flow_run_id)]}}},
            timeout=10,
        ).json()
    assert os.environ.get("PREFECT_API_URL") != api  # the context restored the environment

    summary = state.result()
    assert (
        summary["embeddings"]["shards"] == 2 and summary["embeddings"]["encoded"] == summary["embeddings"]["products"]
    )
    shard_states = {}
    for run in task_runs:
        shard_states.setdefault(run["name"].rsplit("-", 1)[0], []).append(run["state"]["type"])
    for stage in ("embed-shard", "describe-shard", "moderate-shard"):  # every model stage fanned out to both workers
        assert shard_states[stage] == ["COMPLETED", "COMPLETED"], shard_states
    assert summary["descriptions"]["generated"] == 6 and summary["moderation"]["scored"] > 6
    assert summary["recommender"]["outputs"]["recommendations"] > 0  # the recommender used the cached vectors
    report = Path(summary["report"]).read_text()
    assert "expectations: 0 error(s)" in report and f"<b>{summary['recommender']['selected']['name']}</b>" in report
    _, catalogue = read_inputs(dask_settings, date(2026, 4, 10))
    texts = list(product_texts(catalogue))
    encoder = MiniLMEncoder()
    from_cache = embed_texts(texts, encoder, dask_settings.cache_dir)
    assert from_cache.encoded == 0  # the workers' shards covered the whole catalogue...
    np.testing.assert_allclose(from_cache.vectors, encoder.encode(texts), atol=1e-5)  # ...with the same vectors
