"""Process-wide runtime setup (``configure_runtime``), checked in fresh processes."""

import os
import subprocess
import sys

#: An exit handler registered before configure_runtime runs after configure_runtime's own (last in, first out).
PROBE = """
import atexit, gc
atexit.register(lambda: print("at exit", gc.get_freeze_count() > 0))
from shopflow.settings import configure_runtime
configure_runtime()
configure_runtime()
print("before exit", gc.get_freeze_count() > 0)
"""


def test_the_objects_are_frozen_at_exit_not_before(tmp_path) -> None:
    environment = os.environ | {"SHOPFLOW_HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", PROBE], env=environment, capture_output=True, text=True, check=True)
    assert result.stdout.splitlines() == ["before exit False", "at exit True"]
