"""Where torch models run: CUDA when available (``device=auto``), or the device forced by settings; and in which
precision (bfloat16 where the hardware computes it natively)."""

from __future__ import annotations

from pathlib import Path


def resolve_device(requested: str | None = "auto") -> str:
    """``cuda`` or ``cpu`` for a requested ``auto``/``cpu``/``cuda``; forcing CUDA without one is an error."""
    if requested == "cpu":
        return requested
    import torch

    if requested in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was requested (SHOPFLOW_DEVICE=cuda) but torch sees no CUDA device")
    if requested not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {requested!r}: use auto, cpu or cuda")
    return requested


PRECISIONS = ("float32", "bfloat16")
BF16_CPU_FLAGS = {"avx512_bf16", "amx_bf16"}  # /proc/cpuinfo flags of native bfloat16 matrix instructions


def cpu_has_native_bfloat16(cpuinfo: str | None = None) -> bool:
    """Whether the CPU computes bfloat16 natively (AVX512-BF16 or AMX); False where that cannot be read (non-Linux).

    Without it torch emulates bfloat16 and an encoder runs slower than in float32."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False
    flags = {flag for line in cpuinfo.splitlines() if line.startswith("flags") for flag in line.split(":")[1].split()}
    return bool(flags & BF16_CPU_FLAGS)


def resolve_precision(requested: str = "auto", device: str = "cpu") -> str:
    """``float32`` or ``bfloat16`` for a requested ``auto``/``float32``/``bfloat16`` on ``device``.

    ``auto`` takes bfloat16 where it is native (CUDA, or a CPU with AVX512-BF16/AMX), float32 elsewhere."""
    if requested == "auto":
        return "bfloat16" if device == "cuda" or cpu_has_native_bfloat16() else "float32"
    if requested not in PRECISIONS:
        raise ValueError(f"unknown precision {requested!r}: use auto, float32 or bfloat16")
    return requested
