"""A logistic head trained on the Davidson et al. tweets over n-grams and a sentence embedding: logits of hate and of
hate-or-offensive.

The shipped models were trained on other text (Wikipedia comments, a profanity corpus) and barely tell hate speech from
merely offensive language. This head reads the words themselves: word 1–3-grams and character 2–5-grams hashed into
``n_features`` buckets each (no vocabulary to store), plus the all-MiniLM-L6-v2 sentence embedding (the encoder of
``shopflow.models.embeddings``, loaded on first use) scaled by ``embedding_weight``, and one class-weighted logistic
regression per label. ``bench/train_moderation_head.py`` fits it on the calibration half of the tweets only and writes
``text_head.npz`` next to this file: coefficients, intercepts, feature parameters and provenance, as plain arrays (no
pickle). Its content hash, with the encoder's model id, is one of the moderation version's components.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

TEXT_HEAD_PATH = Path(__file__).with_name("text_head.npz")
TEXT_HEAD_LABELS = (
    "identity_hate",
    "toxic",
)  # column order of ``TextHead.logits``: hate vs rest, hate/offensive vs neither
TEXT_HEAD_NAME = "davidson-ngram-minilm-logistic"
TOKEN_PATTERN = r"(?u)\b\w+\b"  # one-letter words count ("u", "n"), they are common in abusive tweets
EMBEDDING_SIZE = 384  # all-MiniLM-L6-v2


@lru_cache(maxsize=2)
def sentence_encoder(device: str = "auto", precision: str = "auto"):
    """The project's MiniLM encoder, created once per process and setting (weights load on the first ``encode``)."""
    from shopflow.models.embeddings import MiniLMEncoder

    return MiniLMEncoder(device=device, precision=precision)


@dataclass(frozen=True)
class CachedEncoder:
    """``encoder`` whose vectors are kept in the content-addressed embedding cache under ``cache_dir``."""

    encoder: object
    cache_dir: Path

    @property
    def model_id(self) -> str:
        return self.encoder.model_id

    @property
    def identity(self):
        return self.encoder.identity

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        from shopflow.models.embeddings import embed_texts

        return embed_texts(list(texts), self.encoder, self.cache_dir).vectors


@dataclass(frozen=True)
class TextFeatures:
    """Word and character n-grams, each hashed into ``n_features`` L2-normalised buckets, then the unit-length MiniLM
    sentence embedding times ``embedding_weight`` (0 leaves it out)."""

    word_ngrams: tuple[int, int] = (1, 3)
    char_ngrams: tuple[int, int] = (2, 5)
    n_features: int = 2**18
    embedding_weight: float = 1.0  # best of 0, 0.5, 1, 2, 3 in 5-fold CV on the calibration half

    @property
    def width(self) -> int:
        return 2 * self.n_features + (EMBEDDING_SIZE if self.embedding_weight else 0)

    def transform(self, texts: Sequence[str], encoder=None):
        """Sparse matrix (texts × ``width``): word buckets, character buckets, weighted embedding.

        ``encoder`` (``model_id`` + ``encode``) must be the MiniLM model, cached or not; default ``sentence_encoder()``.
        """
        import scipy.sparse as sp
        from sklearn.feature_extraction.text import HashingVectorizer

        common = {"n_features": self.n_features, "alternate_sign": False, "norm": "l2", "dtype": np.float32}
        word = HashingVectorizer(analyzer="word", ngram_range=self.word_ngrams, token_pattern=TOKEN_PATTERN, **common)
        char = HashingVectorizer(analyzer="char_wb", ngram_range=self.char_ngrams, **common)
        texts = list(texts)
        blocks = [word.transform(texts), char.transform(texts)]
        if self.embedding_weight:
            vectors = (encoder or sentence_encoder()).encode(texts)
            blocks.append(sp.csr_matrix(self.embedding_weight * np.asarray(vectors, dtype=np.float32)))
        return sp.hstack(blocks, format="csr")

    def embedding_model(self) -> str | None:
        """Name of the sentence encoder the head was fitted for, whatever its precision; None without the embedding."""
        return sentence_encoder().model_name if self.embedding_weight else None


@dataclass(frozen=True, eq=False)
class TextHead:
    """Linear logits ``coefficients · features(text) + intercepts``, one row per ``TEXT_HEAD_LABELS`` label."""

    features: TextFeatures
    coefficients: np.ndarray  # float32, (labels, features.width)
    intercepts: np.ndarray  # float64, (labels,)
    regularisation: float  # the C it was fitted with (out-of-fold refits reuse it)
    provenance: dict = field(default_factory=dict)  # data set, split, rows; not part of the fingerprint

    def logits(self, texts: Sequence[str], encoder=None) -> np.ndarray:
        """(texts × labels) decision values; sigmoid gives the head's own probabilities."""
        if len(texts) == 0:
            return np.zeros((0, len(TEXT_HEAD_LABELS)))
        return self.logits_of(self.features.transform(texts, encoder))

    def logits_of(self, matrix) -> np.ndarray:
        """Decision values of rows already transformed by ``features``."""
        return np.asarray(matrix @ self.coefficients.T, dtype=np.float64) + self.intercepts

    def parameters(self) -> dict:
        return {
            "features": asdict(self.features),
            "embedding_model": self.features.embedding_model(),
            "regularisation": self.regularisation,
            "labels": TEXT_HEAD_LABELS,
        }

    def fingerprint(self) -> str:
        """sha256 of what decides the logits: parameters, coefficients and intercepts."""
        digest = hashlib.sha256(json.dumps(self.parameters(), sort_keys=True).encode())
        digest.update(np.ascontiguousarray(self.coefficients, dtype=np.float32).tobytes())
        digest.update(np.ascontiguousarray(self.intercepts, dtype=np.float64).tobytes())
        return digest.hexdigest()

    def save(self, path: Path = TEXT_HEAD_PATH) -> None:
        """Compressed ``.npz`` of plain arrays; parameters and provenance as JSON strings."""
        np.savez_compressed(
            path,
            coefficients=self.coefficients.astype(np.float32),
            intercepts=self.intercepts.astype(np.float64),
            parameters=np.array(json.dumps(self.parameters(), sort_keys=True)),
            provenance=np.array(json.dumps(self.provenance, sort_keys=True)),
        )


def load_text_head(path: Path = TEXT_HEAD_PATH) -> TextHead:
    """The stored head (arrays only, ``allow_pickle=False``); refuses one for other labels or of the wrong shape."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `python bench/train_moderation_head.py`")
    with np.load(path, allow_pickle=False) as stored:
        parameters = json.loads(str(stored["parameters"]))
        features = TextFeatures(
            **{key: tuple(v) if isinstance(v, list) else v for key, v in parameters.get("features", {}).items()}
        )
        head = TextHead(
            features,
            stored["coefficients"],
            stored["intercepts"],
            float(parameters["regularisation"]),
            json.loads(str(stored["provenance"])),
        )
    expected_shape = (len(TEXT_HEAD_LABELS), features.width)
    other_encoder = parameters.get("embedding_model") != features.embedding_model()
    if tuple(parameters["labels"]) != TEXT_HEAD_LABELS or head.coefficients.shape != expected_shape or other_encoder:
        raise ValueError(f"{path} holds a head for other labels or features: rerun bench/train_moderation_head.py")
    return head


def head_targets(classes: np.ndarray) -> dict[str, np.ndarray]:
    """0/1 targets per ``TEXT_HEAD_LABELS`` label from Davidson classes (0 hate, 1 offensive, 2 neither)."""
    classes = np.asarray(classes)
    return {"identity_hate": (classes == 0).astype(int), "toxic": (classes != 2).astype(int)}


def fit_text_head(
    texts: Sequence[str],
    classes: np.ndarray,
    regularisation: float = 1.0,
    features: TextFeatures = TextFeatures(),
    provenance: dict | None = None,
    encoder=None,
) -> TextHead:
    """One class-weighted (balanced) L2 logistic regression per label over ``features`` of ``texts``."""
    return _fit(features.transform(texts, encoder), classes, regularisation, features, provenance)


def _fit(matrix, classes: np.ndarray, regularisation: float, features: TextFeatures, provenance: dict | None = None):
    from sklearn.linear_model import LogisticRegression

    coefficients, intercepts = [], []
    for label in TEXT_HEAD_LABELS:
        model = LogisticRegression(C=regularisation, class_weight="balanced", solver="liblinear")
        model.fit(matrix, head_targets(classes)[label])
        coefficients.append(model.coef_[0])
        intercepts.append(model.intercept_[0])
    return TextHead(
        features, np.asarray(coefficients, dtype=np.float32), np.asarray(intercepts), regularisation, provenance or {}
    )


def out_of_fold_logits(
    head: TextHead, texts: Sequence[str], classes: np.ndarray, folds: int = 5, encoder=None
) -> np.ndarray:
    """Logits of each text from a head refitted (same settings) without it: honest inputs for a stacker."""
    from sklearn.model_selection import StratifiedKFold

    classes = np.asarray(classes)
    matrix = head.features.transform(texts, encoder)  # row-wise and stateless: transformed once, sliced per fold
    logits = np.zeros((len(classes), len(TEXT_HEAD_LABELS)))
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=0).split(np.zeros(len(classes)), classes):
        logits[test] = _fit(matrix[train], classes[train], head.regularisation, head.features).logits_of(matrix[test])
    return logits
