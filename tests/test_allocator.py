"""glibc malloc thresholds, checked in fresh processes: ``mallopt`` changes a process for good."""

import json
import os
import platform
import subprocess
import sys

import pytest

from shopflow.allocator import MALLOC_SETTINGS, MIB

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")

BLOCK_MIB = 96  # above glibc's largest default mmap threshold (32 MiB), below the night's (256 MiB)

#: Configure (or not), then allocate and free one block; glibc's mallinfo2 says whether the block was mapped from
#: the kernel and whether the heap kept its memory when it was freed.
PROBE = f"""
import ctypes, json, sys
from shopflow.allocator import configure_malloc

applied = configure_malloc() if sys.argv[1] == "configure" else {{}}
libc = ctypes.CDLL(None)
fields = ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")
libc.mallinfo2.restype = type("MallInfo2", (ctypes.Structure,), {{"_fields_": [(f, ctypes.c_size_t) for f in fields]}})
libc.malloc.restype, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
block = libc.malloc({BLOCK_MIB} * 2**20)
mapped_mib = libc.mallinfo2().hblkhd / 2**20
libc.free(block)
print(json.dumps({{"applied": applied, "mapped_mib": mapped_mib, "kept_mib": libc.mallinfo2().fordblks / 2**20}}))
"""


def probe(mode: str, exported: dict[str, str] | None = None) -> dict:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("MALLOC_")}
    completed = subprocess.run(
        [sys.executable, "-c", PROBE, mode], env=environment | (exported or {}), capture_output=True, text=True
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def test_glibc_defaults_map_a_large_block_and_give_it_back_when_freed():
    seen = probe("defaults")
    assert seen["mapped_mib"] >= BLOCK_MIB and seen["kept_mib"] < BLOCK_MIB


def test_configured_a_large_block_comes_from_the_heap_and_is_kept_for_reuse():
    seen = probe("configure")
    assert seen["applied"] == {name: value for name, (value, _) in MALLOC_SETTINGS.items()}
    assert seen["mapped_mib"] < BLOCK_MIB and seen["kept_mib"] >= BLOCK_MIB


def test_an_exported_value_wins_and_is_left_to_glibc():
    seen = probe("configure", {"MALLOC_MMAP_THRESHOLD_": str(MIB)})
    assert list(seen["applied"]) == ["MALLOC_TRIM_THRESHOLD_"]
    assert seen["mapped_mib"] >= BLOCK_MIB  # glibc applied the exported 1 MiB threshold at start
