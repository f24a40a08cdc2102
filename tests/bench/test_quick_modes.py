"""Smoke test: every bench script's ``--quick`` mode runs on tiny data and writes well-formed JSON.

No figure is asserted (timings on a shared CI box mean nothing); only that each script exits 0 and its result
file parses and carries the machine, the command and the benchmark's own sections.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
#: script → top-level keys its result must carry besides the common ones.
SCRIPTS = {
    "als": ("matrix", "runs"),
    "cleaning": ("datasets", "targets"),
    "overhead": ("runs", "median_ratio"),
    "incremental": ("sequences", "targets"),
    "scale": ("sizes", "targets"),
}
COMMON_KEYS = ("benchmark", "generated_at", "quick", "machine", "command")


@pytest.mark.slow
@pytest.mark.parametrize("script", list(SCRIPTS))
def test_quick_mode_writes_well_formed_json(script: str, tmp_path: Path) -> None:
    process = subprocess.run(
        [sys.executable, str(BENCH / f"{script}.py"), "--quick", "--results-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]
    result = json.loads((tmp_path / f"{script}-quick.json").read_text())
    for key in COMMON_KEYS + SCRIPTS[script]:
        assert key in result, f"{script}: missing {key!r}"
    assert result["quick"] is True and result["benchmark"] == script
    assert result["machine"]["cpus"] >= 1 and len(result["machine"]["load_average"]) == 3
