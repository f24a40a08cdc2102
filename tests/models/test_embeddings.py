"""Product texts and the MiniLM embedding cache (the real model: it loads in a few seconds)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from shopflow.models.catalogue import product_text, product_texts
from shopflow.models.embeddings import MiniLMEncoder, embed_texts, minilm_directory

TEXTS = ["JUMBO BAG RED RETROSPOT", "Kestrel Oak Desk Lamp 31 cm | lighting | Kestrel", "WHITE HANGING HEART T-LIGHT"]


class CountingEncoder:
    """Wraps the real encoder and records every batch of texts it is asked to encode."""

    def __init__(self, encoder: MiniLMEncoder, model_id: str | None = None) -> None:
        self.encoder = encoder
        self.model_id = model_id or encoder.model_id
        self.batches: list[list[str]] = []

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.batches.append(list(texts))
        return self.encoder.encode(texts)


def test_product_text_joins_the_fields_that_are_present() -> None:
    assert (
        product_text("Volt Jump Rope", "sports", "Inkwell", '{"color": "lime", "weight_kg": 3.3}', "A rope.")
        == "Volt Jump Rope | sports | Inkwell | color: lime, weight kg: 3.3 | A rope."
    )
    assert product_text("RED RETROSPOT BAG", None, "", None, None) == "RED RETROSPOT BAG"
    catalogue = pd.DataFrame({"title": ["A", "B"], "category": ["x", None], "attributes": ["not json", None]})
    assert product_texts(catalogue).tolist() == ["A | x | not json", "B"]


def test_the_model_is_found_inside_the_installed_package() -> None:
    directory = minilm_directory()
    assert (directory / "model.safetensors").is_file() and (directory / "config.json").is_file()


def test_embeddings_are_unit_vectors_that_place_similar_titles_close(minilm: MiniLMEncoder) -> None:
    vectors = minilm.encode(["JUMBO BAG RED RETROSPOT", "RED RETROSPOT JUMBO BAG", "OAK DESK LAMP"])
    assert vectors.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > 0.9 > vectors[0] @ vectors[2]


def test_the_cache_encodes_only_new_or_changed_texts(minilm: MiniLMEncoder, tmp_path: Path) -> None:
    encoder = CountingEncoder(minilm)
    first = embed_texts(TEXTS, encoder, tmp_path)
    assert (first.encoded, first.cached) == (3, 0)

    second = embed_texts(TEXTS, encoder, tmp_path)  # nothing changed: nothing is encoded
    assert (second.encoded, second.cached) == (0, 3)
    assert len(encoder.batches) == 1
    np.testing.assert_array_equal(second.vectors, first.vectors)

    changed = [TEXTS[0], TEXTS[1] + " | oak", TEXTS[2]]  # one product's text changed: only it is encoded
    third = embed_texts(changed, encoder, tmp_path)
    assert (third.encoded, third.cached) == (1, 2)
    assert encoder.batches[-1] == [changed[1]]
    np.testing.assert_array_equal(third.vectors[[0, 2]], first.vectors[[0, 2]])
    assert not np.allclose(third.vectors[1], first.vectors[1])


def test_another_model_id_does_not_reuse_the_vectors(minilm: MiniLMEncoder, tmp_path: Path) -> None:
    embed_texts(TEXTS, CountingEncoder(minilm), tmp_path)
    other = embed_texts(TEXTS, CountingEncoder(minilm, model_id="another-model@1"), tmp_path)
    assert (other.encoded, other.cached) == (3, 0)
    assert len(list((tmp_path / "embeddings").glob("*.npz"))) == 2


def test_encoding_draws_a_progress_bar_only_when_progress_is_on(minilm, monkeypatch, capsys) -> None:
    monkeypatch.setenv("SHOPFLOW_PROGRESS", "on")
    minilm.encode(["red lamp", "blue chair"])
    assert "embedding 2 texts" in capsys.readouterr().err
    monkeypatch.setenv("SHOPFLOW_PROGRESS", "off")
    minilm.encode(["red lamp", "blue chair"])
    assert capsys.readouterr().err == ""


def test_bfloat16_vectors_match_float32_and_get_their_own_cache_key(tmp_path: Path) -> None:
    full, half = MiniLMEncoder(device="cpu", precision="float32"), MiniLMEncoder(device="cpu", precision="bfloat16")
    assert full.model_id == full.model_name and half.model_id == f"{full.model_name}+bfloat16"
    assert half.identity.name.endswith("bfloat16") and half.identity.sha256 == full.identity.sha256
    cosines = (full.encode(TEXTS) * half.encode(TEXTS)).sum(axis=1)
    assert cosines.min() > 0.99
    embed_texts(TEXTS, full, tmp_path)
    assert embed_texts(TEXTS, half, tmp_path).encoded == len(TEXTS)  # float32 vectors are not served as bfloat16
