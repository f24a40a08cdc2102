"""Where torch models run and in which precision."""

from __future__ import annotations

import pytest

from shopflow.devices import cpu_has_native_bfloat16, resolve_device, resolve_precision

CPUINFO = "processor\t: 0\nflags\t\t: fpu sse2 avx2 {extra}\nbugs\t\t: spectre_v1\n"


def test_devices_resolve_to_cuda_only_when_torch_has_it() -> None:
    import torch

    has_cuda = torch.cuda.is_available()
    assert resolve_device("auto") == ("cuda" if has_cuda else "cpu")
    assert resolve_device("cpu") == "cpu"
    if not has_cuda:
        with pytest.raises(RuntimeError, match="no CUDA device"):
            resolve_device("cuda")
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("tpu")


def test_native_bfloat16_is_read_from_the_cpu_flags() -> None:
    assert cpu_has_native_bfloat16(CPUINFO.format(extra="avx512f avx512_bf16"))
    assert cpu_has_native_bfloat16(CPUINFO.format(extra="amx_bf16 amx_tile"))
    assert not cpu_has_native_bfloat16(CPUINFO.format(extra="avx512f avx512_vnni"))
    assert not cpu_has_native_bfloat16("")


def test_auto_precision_is_bfloat16_only_where_it_is_native(monkeypatch) -> None:
    import shopflow.devices as devices

    assert resolve_precision("auto", "cuda") == "bfloat16"
    monkeypatch.setattr(devices, "cpu_has_native_bfloat16", lambda: False)
    assert resolve_precision("auto", "cpu") == "float32"
    assert resolve_precision("bfloat16", "cpu") == "bfloat16"  # forced: allowed, if slow
    monkeypatch.setattr(devices, "cpu_has_native_bfloat16", lambda: True)
    assert resolve_precision("auto", "cpu") == "bfloat16"
    assert resolve_precision("float32", "cpu") == "float32"
    with pytest.raises(ValueError, match="unknown precision"):
        resolve_precision("int8", "cpu")
