"""Shared fixtures: an isolated data root per test and a tiny helper to write landing files."""

from __future__ import annotations

import atexit
import csv
import os
import shutil
import tempfile
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from shopflow.contract import landing_path
from shopflow.settings import Settings, configure_runtime

# Thread caps, offline flags and a throw-away PREFECT_HOME for the whole session (never the user's ./var).
_SESSION_HOME = Path(tempfile.mkdtemp(prefix="shopflow-tests-"))
atexit.register(shutil.rmtree, _SESSION_HOME, ignore_errors=True)
configure_runtime(Settings(home=_SESSION_HOME))
# Flow tests describe products with the fast SmolLM2 (the default Qwen is one `slow` test of its own), a few per
# night, dequantising it once per session into a shared cache instead of once per data root.
os.environ.setdefault("SHOPFLOW_DESCRIPTION_MODEL", "smollm2-135m")
os.environ.setdefault("SHOPFLOW_DESCRIPTION_BUDGET", "6")
os.environ.setdefault(
    "SHOPFLOW_LANGUAGE_MODEL_CACHE", os.environ.get("SHOPFLOW_TEST_LLM_CACHE", str(_SESSION_HOME / "llm"))
)

WriteLanding = Callable[..., Path]


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings whose data root is a fresh temporary folder (also exported for code that builds its own)."""
    monkeypatch.setenv("SHOPFLOW_HOME", str(tmp_path / "home"))
    configured = Settings()
    configured.ensure_dirs()
    return configured


@pytest.fixture
def write_landing(settings: Settings) -> WriteLanding:
    """``write_landing(entity, day, rows, columns=None)``: a CSV delivery in the test's landing folder."""

    def write(entity: str, day: str, rows: list[dict], columns: list[str] | None = None) -> Path:
        path = landing_path(settings.landing_dir, entity, date.fromisoformat(day))
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns or list(rows[0]), extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        return path

    return write
