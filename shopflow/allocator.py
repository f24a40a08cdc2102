"""glibc malloc settings for the night's process: large blocks come from the heap and are kept for reuse.

torch allocates and frees large tensors at every step of a forward pass. With glibc's defaults
a block above the mmap threshold (which grows to at most 32 MiB) is mapped fresh from the kernel each time and every
page of it faults in when first written: ~2.4M minor page faults for 16 descriptions. With the thresholds below,
0.4M. They work in the main thread only (a worker thread's arena has heaps of at most 64 MiB), so the flow runs its
model stages in its own thread (``flows/nightly.py``). Measured in BENCHMARKS.md §1.
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform
from collections.abc import Mapping

log = logging.getLogger(__name__)

MIB = 2**20

#: glibc's environment variables for the settings, the night's values, and the ``mallopt`` parameter
#: (``M_*`` in glibc's malloc.h) that sets each in a running process.
MALLOC_SETTINGS = {
    "MALLOC_MMAP_THRESHOLD_": (256 * MIB, -3),  # blocks below this come from the heap and are reused when freed
    "MALLOC_TRIM_THRESHOLD_": (512 * MIB, -1),  # free memory at the heap's top kept for reuse, at most this much
}


def configure_malloc(environ: Mapping[str, str] = os.environ) -> dict[str, int]:
    """Apply :data:`MALLOC_SETTINGS` to this process, except those exported in ``environ`` (glibc applied those when
    the process started: a value you export wins). Returns what was applied; nothing where libc is not glibc."""
    if platform.libc_ver()[0] != "glibc":
        return {}
    pending = {name: value for name, (value, _) in MALLOC_SETTINGS.items() if name not in environ}
    if pending:
        libc = ctypes.CDLL(None)  # the process's own symbols, glibc's among them (find_library would run ldconfig)
        for name, value in pending.items():
            if libc.mallopt(MALLOC_SETTINGS[name][1], value) != 1:
                raise OSError(f"glibc refused mallopt for {name}={value}")
        log.debug("malloc thresholds set: %s", pending)
    return pending
