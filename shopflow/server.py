"""A local Prefect server for scheduled nights: started (or reused) on 127.0.0.1, state under the data root.

Prefect's ephemeral mode runs flows but never schedules them, so the nightly schedule needs a long-running
server; ``shopflow serve`` starts one if none answers on the configured port, serves the nightly deployment on
its cron, and on Ctrl-C stops what it started.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from shopflow.settings import Settings

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_SECONDS = 30.0  # after Ctrl-C, how long Prefect's runner may take to stop before it is interrupted again


class PrefectServerError(RuntimeError):
    """The local Prefect server did not come up; the message points at its log file."""


def api_url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.prefect_port}/api"


def server_is_healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def start_prefect_server(settings: Settings, timeout_seconds: float = 180) -> subprocess.Popen | None:
    """Start a Prefect server unless one already answers; returns the process we started (None when reused)."""
    url = api_url(settings)
    if server_is_healthy(url):
        log.info("reusing the Prefect server at %s", url)
        return None
    settings.prefect_home.mkdir(parents=True, exist_ok=True)
    log_path = settings.prefect_home / "server.log"
    command = [str(Path(sys.executable).with_name("prefect")), "server", "start", "--host", "127.0.0.1"]
    command += ["--port", str(settings.prefect_port)]
    environment = os.environ | {"PREFECT_HOME": str(settings.prefect_home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    environment.pop("PREFECT_API_URL", None)  # the server itself must not try to reach an API
    with log_path.open("ab") as server_log:
        process = subprocess.Popen(command, env=environment, stdout=server_log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise PrefectServerError(f"the Prefect server exited with code {process.returncode}; see {log_path}")
        if server_is_healthy(url):
            log.info("started a Prefect server at %s (log: %s)", url, log_path)
            return process
        time.sleep(1)
    stop_prefect_server(process)
    raise PrefectServerError(
        f"the Prefect server did not answer at {url} within {timeout_seconds:.0f} s; see {log_path}"
    )


def stop_prefect_server(process: subprocess.Popen | None, timeout_seconds: float = 30) -> None:
    """Stop a server we started (SIGINT, then SIGKILL after the timeout); a reused server is left running."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=timeout_seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def local_prefect_api(settings: Settings) -> Iterator[str]:
    """Point this process and every child it spawns (Dask workers, flow-run subprocesses) at the local server.

    Starts the server unless one answers; stops it on exit only when it was started here.
    """
    from prefect.logging.handlers import APILogWorker
    from prefect.settings import PREFECT_API_URL, temporary_settings

    server = start_prefect_server(settings)
    url = api_url(settings)
    previous = os.environ.get("PREFECT_API_URL")
    os.environ["PREFECT_API_URL"] = url
    try:
        with temporary_settings(updates={PREFECT_API_URL: url}):
            yield url
            APILogWorker.drain_all(timeout=5)  # send the run's last log lines while the server still listens
    finally:
        if previous is None:
            os.environ.pop("PREFECT_API_URL", None)
        else:
            os.environ["PREFECT_API_URL"] = previous
        stop_prefect_server(server)


def serve_nightly(settings: Settings) -> None:
    """Serve the nightly deployment on its cron against a local server until interrupted (Ctrl-C/SIGTERM)."""
    from prefect.schedules import Cron

    from shopflow.flows.nightly import nightly

    try:  # the server starts and stops interruptibly; only the serving itself has a deadline (see below)
        with interrupting_signals(), local_prefect_api(settings), interrupting_signals(SHUTDOWN_GRACE_SECONDS):
            nightly.serve(
                name="nightly",
                schedules=[Cron(settings.nightly_cron, timezone=settings.timezone)],
                description="ingest → dbt build → audit → models → publish → report, for the latest landing day",
                pause_on_shutdown=False,
            )
    except KeyboardInterrupt:
        log.info("stopping: interrupted")


@contextmanager
def interrupting_signals(deadline_seconds: float | None = None) -> Iterator[None]:
    """Inside the block, SIGINT and SIGTERM raise KeyboardInterrupt; with ``deadline_seconds``, a shutdown still
    running that long after the first of them is interrupted again, like a second Ctrl-C.

    Prefect's runner stops through asyncio task cancellation; in one CI run under load it absorbed the cancellation
    and ``shopflow serve`` never exited after Ctrl-C. Leaving the block cancels the deadline, so the server shutdown
    that follows it is never cut short.
    """
    deadline: list[threading.Timer] = []

    def interrupt(signum: int, frame: object) -> None:
        if deadline_seconds is not None and not deadline:
            log.info(
                "stopping: %s; forcing the stop if it takes over %.0f s", signal.Signals(signum).name, deadline_seconds
            )
            timer = threading.Timer(deadline_seconds, os.kill, (os.getpid(), signal.SIGINT))
            timer.daemon = True
            timer.start()
            deadline.append(timer)
        raise KeyboardInterrupt

    previous = {signum: signal.signal(signum, interrupt) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for timer in deadline:
            timer.cancel()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
