"""Where torch models run: CUDA when available (``device=auto``), or the device forced by settings."""

from __future__ import annotations


def resolve_device(requested: str | None = "auto") -> str:
    """``cuda`` or ``cpu`` for a requested ``auto``/``cpu``/``cuda``; forcing CUDA without one is an error."""
    import torch

    if requested in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was requested (SHOPFLOW_DEVICE=cuda) but torch sees no CUDA device")
    if requested not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {requested!r}: use auto, cpu or cuda")
    return requested
