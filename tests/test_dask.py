"""`SHOPFLOW_TASK_RUNNER=dask shopflow nightly` for real: it starts a local Prefect server, a 2-worker Dask
LocalCluster runs every model stage's shards, and the server's records show both workers' task runs.

The night runs in its own process, as a user runs it, so this test process never talks to that server's API.
"""

import json
import os
import socket
import subprocess
import sys
from datetime import date
from pathlib import Path

import httpx
import numpy as np
import pytest

from shopflow.demo import DemoConfig, generate_demo_shop
from shopflow.models.catalogue import product_texts
from shopflow.models.embeddings import MiniLMEncoder, embed_texts
from shopflow.models.pipeline import read_inputs
from shopflow.server import api_url, start_prefect_server, stop_prefect_server
from shopflow.settings import Settings

RUN_DATE = date(2026, 4, 10)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_a_dask_night_shards_every_model_stage_over_two_workers_against_a_real_server(settings: Settings) -> None:
    generate_demo_shop(DemoConfig(products=60, users=80, days=10, seed=3, start=date(2026, 4, 1)), settings.landing_dir)
    dask_settings = settings.model_copy(update={"task_runner": "dask", "dask_workers": 2, "prefect_port": free_port()})
    environment = os.environ | {
        "SHOPFLOW_HOME": str(settings.home),
        "SHOPFLOW_TASK_RUNNER": "dask",
        "SHOPFLOW_DASK_WORKERS": "2",
        "SHOPFLOW_PREFECT_PORT": str(dask_settings.prefect_port),
    }
    environment.pop("PREFECT_API_URL", None)  # `shopflow nightly` must start (and stop) the server itself

    night = subprocess.run(
        [sys.executable, "-m", "shopflow.cli", "nightly", "--date", RUN_DATE.isoformat()],
        env=environment,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert night.returncode == 0, night.stdout[-3000:] + night.stderr[-3000:]

    server = start_prefect_server(dask_settings)  # the same server state, to read what the night recorded
    try:
        api = api_url(dask_settings)
        (flow_run,) = httpx.post(f"{api}/flow_runs/filter", json={}, timeout=10).json()
        task_runs = httpx.post(
            f"{api}/task_runs/filter", json={"flow_runs": {"id": {"any_": [flow_run["id"]]}}}, timeout=10
        ).json()
    finally:
        stop_prefect_server(server)
    assert flow_run["state"]["type"] == "COMPLETED"
    shard_states: dict[str, list[str]] = {}
    for run in task_runs:
        shard_states.setdefault(run["name"].rsplit("-", 1)[0], []).append(run["state"]["type"])
    for stage in ("embed-shard", "describe-shard", "moderate-shard"):  # every model stage fanned out to both workers
        assert shard_states[stage] == ["COMPLETED", "COMPLETED"], shard_states

    summary = json.loads((settings.reports_dir / RUN_DATE.isoformat() / "nightly.json").read_text())
    assert (
        summary["embeddings"]["shards"] == 2 and summary["embeddings"]["encoded"] == summary["embeddings"]["products"]
    )
    assert summary["descriptions"]["generated"] == 6 and summary["moderation"]["scored"] > 6
    assert summary["recommender"]["outputs"]["recommendations"] > 0  # the recommender used the cached vectors
    report = Path(settings.reports_dir / RUN_DATE.isoformat() / "index.html").read_text()
    assert "expectations: 0 error(s)" in report and f"<b>{summary['recommender']['selected']['name']}</b>" in report
    _, catalogue = read_inputs(settings, RUN_DATE)
    texts = list(product_texts(catalogue))
    encoder = MiniLMEncoder()
    from_cache = embed_texts(texts, encoder, settings.cache_dir)
    assert from_cache.encoded == 0  # the workers' shards covered the whole catalogue...
    np.testing.assert_allclose(from_cache.vectors, encoder.encode(texts), atol=1e-5)  # ...with the same vectors
