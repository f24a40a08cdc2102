"""Background imports while the night waits on dbt."""

import importlib.util
import logging
import sys
import threading

import pytest

from shopflow.warmup import STAGE_IMPORTS, imports_in_background


@pytest.fixture
def probe_module(tmp_path, monkeypatch):
    """Write a module named ``name`` with ``source`` on a temporary import path; forgotten again after the test."""
    written: list[str] = []

    def write(name: str, source: str) -> str:
        (tmp_path / f"{name}.py").write_text(source)
        written.append(name)
        return name

    monkeypatch.syspath_prepend(str(tmp_path))
    yield write
    for name in written:
        sys.modules.pop(name, None)


def test_the_modules_are_imported_off_the_calling_thread_and_the_block_waits_for_them(probe_module) -> None:
    slow = "import threading, time\ntime.sleep(0.3)\nIMPORTED_BY = threading.current_thread().name\n"
    name = probe_module("shopflow_warm_probe", slow)
    with imports_in_background([name]) as thread:
        assert thread.daemon
    assert not thread.is_alive()  # the block waited for the 0.3 s import
    assert sys.modules[name].IMPORTED_BY == "shopflow-imports" != threading.current_thread().name


def test_a_failed_import_is_only_logged_and_an_error_in_the_block_still_waits(probe_module, caplog) -> None:
    name = probe_module("shopflow_broken_probe", "import time\ntime.sleep(0.3)\nraise ImportError('no such wheel')\n")
    caplog.set_level(logging.DEBUG, logger="shopflow.warmup")
    with pytest.raises(RuntimeError, match="dbt failed"), imports_in_background([name]) as thread:
        raise RuntimeError("dbt failed")
    assert not thread.is_alive()
    assert f"background import of {name} failed: no such wheel" in caplog.text


def test_the_stage_imports_name_installed_modules() -> None:
    assert all(importlib.util.find_spec(module) is not None for module in STAGE_IMPORTS)
