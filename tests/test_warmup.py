"""Background imports while the night waits on dbt."""

import importlib.util
import logging
import sys
import threading

import pytest

from shopflow.warmup import STAGE_IMPORTS, imports_in_background


def test_the_modules_are_imported_off_the_calling_thread_and_the_block_waits_for_them(tmp_path, monkeypatch) -> None:
    probe = "import threading\nIMPORTED_BY = threading.current_thread().name\n"
    (tmp_path / "shopflow_warm_probe.py").write_text(probe)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "shopflow_warm_probe", raising=False)
    with imports_in_background(["shopflow_warm_probe"]) as thread:
        assert thread.daemon
    assert not thread.is_alive()
    assert sys.modules["shopflow_warm_probe"].IMPORTED_BY == "shopflow-imports" != threading.current_thread().name


def test_a_failed_import_is_left_to_the_stage_and_an_error_in_the_block_still_waits(
    tmp_path, monkeypatch, caplog
) -> None:
    (tmp_path / "shopflow_broken_probe.py").write_text("raise ImportError('no such wheel')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    caplog.set_level(logging.DEBUG, logger="shopflow.warmup")
    with pytest.raises(RuntimeError, match="dbt failed"), imports_in_background(["shopflow_broken_probe"]) as thread:
        raise RuntimeError("dbt failed")
    assert not thread.is_alive()
    assert "background import of shopflow_broken_probe failed: no such wheel" in caplog.text
    assert "shopflow_broken_probe" not in sys.modules  # the stage's own import raises again, in context


def test_the_stage_imports_name_installed_modules() -> None:
    assert all(importlib.util.find_spec(module) is not None for module in STAGE_IMPORTS)
