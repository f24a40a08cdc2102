"""Background imports while the night waits on dbt."""

import gc
import importlib.util
import logging
import subprocess
import sys
import threading
import weakref

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


def test_the_preparations_run_in_the_thread_after_the_imports_and_a_failed_one_is_only_logged(
    probe_module, caplog
) -> None:
    name = probe_module("shopflow_prepared_probe", "import time\ntime.sleep(0.3)\n")
    seen: list[tuple[str, bool]] = []

    def note() -> None:
        seen.append((threading.current_thread().name, name in sys.modules))

    def fail() -> None:
        raise OSError("store locked")

    caplog.set_level(logging.DEBUG, logger="shopflow.warmup")
    with imports_in_background([name], preparations=[fail, note]) as thread:
        pass
    assert not thread.is_alive()
    assert seen == [("shopflow-imports", True)]  # after the failed one, once its module was imported
    assert "background preparation fail failed: store locked" in caplog.text


@pytest.fixture
def collector_by_hand():
    """No automatic collections and nothing frozen during the test; both restored after it."""
    gc.unfreeze()
    gc.disable()
    yield
    gc.enable()
    gc.unfreeze()


class _Node:
    pass


def test_after_the_imports_and_preparations_the_garbage_is_collected_and_the_live_objects_are_frozen(
    probe_module, collector_by_hand
) -> None:
    garbage, alive = _Node(), _Node()
    garbage.itself = garbage  # a reference cycle: only a collection frees it
    collected = weakref.ref(garbage)
    del garbage
    frozen_while_preparing = []
    with imports_in_background(
        [probe_module("shopflow_freeze_probe", "VALUE = 1\n")],
        preparations=[lambda: frozen_while_preparing.append(gc.get_freeze_count())],
    ):
        pass
    assert collected() is None
    assert frozen_while_preparing == [0] and gc.get_freeze_count() > 0
    assert gc.is_tracked(alive) and not any(tracked is alive for tracked in gc.get_objects())  # out of the generations


def test_the_flow_module_leaves_the_stage_imports_to_the_background_with_gx_quiet() -> None:
    code = (
        "import logging, sys, shopflow.flows.nightly\n"
        "from shopflow.warmup import STAGE_IMPORTS\n"
        "print([module for module in STAGE_IMPORTS if module.partition('.')[0] in sys.modules])\n"
        "print(logging.getLevelName(logging.getLogger('great_expectations').level))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["[]", "WARNING"]  # before the background thread imports it


def test_the_stage_imports_name_installed_modules() -> None:
    assert all(importlib.util.find_spec(module) is not None for module in STAGE_IMPORTS)
