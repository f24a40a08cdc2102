"""One structured log line per pipeline stage: rows in and out, wall seconds and peak memory."""

from __future__ import annotations

import json
import logging
import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

log = logging.getLogger("shopflow.stage")


@dataclass
class StageRecord:
    stage: str
    rows_in: int | None = None
    rows_out: int | None = None
    seconds: float = 0.0
    peak_rss_mb: float = 0.0  # the process's peak resident memory so far (children included), MiB
    status: str = "running"
    error: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def peak_rss_mb() -> float:
    """Peak resident memory of this process and its finished children, in MiB (ru_maxrss is KiB on Linux)."""
    scale = 1 / (1024 * 1024) if sys.platform == "darwin" else 1 / 1024
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, children) * scale, 1)


@contextmanager
def stage(name: str) -> Iterator[StageRecord]:
    """Time a stage (the caller fills ``rows_in``/``rows_out``); logs one JSON line when it ends, also on error."""
    record = StageRecord(name)
    started = time.perf_counter()
    try:
        yield record
        record.status = "ok"
    except BaseException as exc:
        record.status = "failed"
        record.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        raise
    finally:
        record.seconds = round(time.perf_counter() - started, 2)
        record.peak_rss_mb = peak_rss_mb()
        log.info("stage %s", json.dumps(record.to_dict()))
