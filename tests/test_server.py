"""`shopflow serve` for real: a local Prefect server, the nightly deployment on its cron, a triggered run."""

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import httpx
import pytest

from shopflow.demo import DemoConfig, generate_demo_shop
from shopflow.server import server_is_healthy
from shopflow.settings import PROJECT_ROOT as REPO
from shopflow.settings import Settings


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.mark.slow
def test_serve_schedules_the_nightly_and_runs_it_on_demand(settings: Settings, tmp_path: Path) -> None:
    generate_demo_shop(DemoConfig(products=30, users=40, days=2, start=date(2026, 5, 1)), settings.landing_dir)
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    environment = os.environ | {
        "SHOPFLOW_HOME": str(settings.home),
        "SHOPFLOW_PREFECT_PORT": str(port),
        "SHOPFLOW_TIMEZONE": "Europe/Berlin",
    }
    environment.pop("PREFECT_API_URL", None)
    serve_log = (tmp_path / "serve.log").open("wb")
    serving = subprocess.Popen(
        [sys.executable, "-m", "shopflow.cli", "serve"], env=environment, stdout=serve_log, stderr=subprocess.STDOUT
    )
    try:
        deployment = wait_for(lambda: find_deployment(api), 240, "the nightly deployment")
        schedule = deployment["schedules"][0]["schedule"]
        assert (schedule["cron"], schedule["timezone"]) == ("0 2 * * *", "Europe/Berlin")
        assert wait_for(lambda: scheduled_runs(api, deployment["id"]), 90, "runs created by the scheduler")

        run = httpx.post(f"{api}/deployments/{deployment['id']}/create_flow_run", json={}, timeout=10).json()
        final = wait_for(lambda: finished_state(api, run["id"]), 300, "the triggered run to finish")
        assert final == "COMPLETED", (tmp_path / "serve.log").read_text()[-3000:]
        assert settings.analytics_path.exists()

        # the work-pool alternative: prefect.yaml deploys against the same server
        prefect = [str(Path(sys.executable).with_name("prefect"))]
        cli_env = environment | {"PREFECT_API_URL": api}
        subprocess.run(
            [*prefect, "work-pool", "create", "shopflow-local", "--type", "process"], env=cli_env, check=True
        )
        subprocess.run([*prefect, "--no-prompt", "deploy", "--all"], env=cli_env, cwd=REPO, check=True)
        deployed = find_deployment(api)
        assert deployed["work_pool_name"] == "shopflow-local"
        assert deployed["schedules"][0]["schedule"]["cron"] == "0 2 * * *"
    finally:
        serving.send_signal(signal.SIGINT)
        serving.wait(timeout=90)
        serve_log.close()
    assert not server_is_healthy(api), "the server started by `shopflow serve` must stop with it"


def find_deployment(api: str) -> dict | None:
    try:
        found = httpx.post(
            f"{api}/deployments/filter", json={"deployments": {"name": {"any_": ["nightly"]}}}, timeout=5
        )
    except httpx.HTTPError:
        return None
    return found.json()[0] if found.status_code == 200 and found.json() else None


def scheduled_runs(api: str, deployment_id: str) -> list:
    body = {"flow_runs": {"deployment_id": {"any_": [deployment_id]}, "state": {"type": {"any_": ["SCHEDULED"]}}}}
    return httpx.post(f"{api}/flow_runs/filter", json=body, timeout=5).json()


def finished_state(api: str, run_id: str) -> str | None:
    state = httpx.get(f"{api}/flow_runs/{run_id}", timeout=5).json()["state"]["type"]
    return state if state in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED") else None


# An asyncio service that swallows its cancellation, as Prefect's runner once did under load after Ctrl-C.
STUBBORN_SERVICE = """
import asyncio, sys
from contextlib import nullcontext
from shopflow.server import interrupting_signals

async def service():
    print("serving", flush=True)
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        await asyncio.sleep(3600)

with interrupting_signals(1.0) if sys.argv[1] == "deadline" else nullcontext():
    asyncio.run(service())
"""


@pytest.mark.parametrize("guard", ["deadline", "none"])
def test_ctrl_c_stops_a_service_that_swallows_cancellation_only_with_a_deadline(guard: str) -> None:
    service = subprocess.Popen(
        [sys.executable, "-c", STUBBORN_SERVICE, guard], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert service.stdout.readline().strip() == "serving"
        service.send_signal(signal.SIGINT)
        try:
            service.wait(timeout=8)
        except subprocess.TimeoutExpired:
            stopped = False
        else:
            stopped = True
    finally:
        service.kill()
        _, stderr = service.communicate()
    if guard == "deadline":
        assert stopped and "KeyboardInterrupt" in stderr, stderr
    else:  # the control: without the deadline one Ctrl-C leaves it running
        assert not stopped
