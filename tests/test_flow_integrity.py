"""Every flow module imports and exposes Prefect flows (cf. a DAG-integrity test)."""

import importlib
from pathlib import Path

import pytest
from prefect.flows import Flow

FLOW_MODULES = sorted(p.stem for p in (Path(__file__).parents[1] / "flows").glob("*.py") if p.stem != "__init__")


@pytest.mark.parametrize("module_name", FLOW_MODULES)
def test_flow_module_imports_and_defines_a_flow(module_name: str) -> None:
    module = importlib.import_module(f"shopflow.flows.{module_name}")
    assert any(isinstance(value, Flow) for value in vars(module).values())
