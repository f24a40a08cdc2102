"""A hashed n-gram logistic head trained on the Davidson et al. tweets: logits of hate and of hate-or-offensive.

The shipped models were trained on other text (Wikipedia comments, a profanity corpus) and barely tell hate speech from
merely offensive language. This head reads the words themselves: word 1–3-grams and character 2–5-grams hashed into
``n_features`` buckets each (no vocabulary to store), and one class-weighted logistic regression per label.
``bench/train_moderation_head.py`` fits it on the calibration half of the tweets only and writes ``text_head.npz``
next to this file: coefficients, intercepts, vectoriser parameters and provenance, as plain arrays (no pickle).
Its content hash is one of the moderation version's components.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

TEXT_HEAD_PATH = Path(__file__).with_name("text_head.npz")
TEXT_HEAD_LABELS = (
    "identity_hate",
    "toxic",
)  # column order of ``TextHead.logits``: hate vs rest, hate/offensive vs neither
TEXT_HEAD_NAME = "davidson-hashed-ngram-logistic"
TOKEN_PATTERN = r"(?u)\b\w+\b"  # one-letter words count ("u", "n"), they are common in abusive tweets


@dataclass(frozen=True)
class HashedNgrams:
    """Word and character n-grams, each hashed into ``n_features`` L2-normalised buckets."""

    word_ngrams: tuple[int, int] = (1, 3)
    char_ngrams: tuple[int, int] = (2, 5)
    n_features: int = 2**18

    def transform(self, texts: Sequence[str]):
        """Sparse matrix (texts × 2·n_features): word buckets, then character buckets."""
        import scipy.sparse as sp
        from sklearn.feature_extraction.text import HashingVectorizer

        common = {"n_features": self.n_features, "alternate_sign": False, "norm": "l2", "dtype": np.float32}
        word = HashingVectorizer(analyzer="word", ngram_range=self.word_ngrams, token_pattern=TOKEN_PATTERN, **common)
        char = HashingVectorizer(analyzer="char_wb", ngram_range=self.char_ngrams, **common)
        texts = list(texts)
        return sp.hstack([word.transform(texts), char.transform(texts)], format="csr")


@dataclass(frozen=True, eq=False)
class TextHead:
    """Linear logits ``coefficients · ngrams(text) + intercepts``, one row per ``TEXT_HEAD_LABELS`` label."""

    ngrams: HashedNgrams
    coefficients: np.ndarray  # float32, (labels, 2·n_features)
    intercepts: np.ndarray  # float64, (labels,)
    regularisation: float  # the C it was fitted with (out-of-fold refits reuse it)
    provenance: dict = field(default_factory=dict)  # data set, split, rows; not part of the fingerprint

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        """(texts × labels) decision values; sigmoid gives the head's own probabilities."""
        if len(texts) == 0:
            return np.zeros((0, len(TEXT_HEAD_LABELS)))
        return np.asarray(self.ngrams.transform(texts) @ self.coefficients.T, dtype=np.float64) + self.intercepts

    def parameters(self) -> dict:
        return {"ngrams": asdict(self.ngrams), "regularisation": self.regularisation, "labels": TEXT_HEAD_LABELS}

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
        ngrams = HashedNgrams(
            **{key: tuple(v) if isinstance(v, list) else v for key, v in parameters["ngrams"].items()}
        )
        head = TextHead(
            ngrams,
            stored["coefficients"],
            stored["intercepts"],
            float(parameters["regularisation"]),
            json.loads(str(stored["provenance"])),
        )
    expected_shape = (len(TEXT_HEAD_LABELS), 2 * ngrams.n_features)
    if tuple(parameters["labels"]) != TEXT_HEAD_LABELS or head.coefficients.shape != expected_shape:
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
    ngrams: HashedNgrams = HashedNgrams(),
    provenance: dict | None = None,
) -> TextHead:
    """One class-weighted (balanced) L2 logistic regression per label over the hashed n-grams."""
    from sklearn.linear_model import LogisticRegression

    features = ngrams.transform(texts)
    coefficients, intercepts = [], []
    for label in TEXT_HEAD_LABELS:
        model = LogisticRegression(C=regularisation, class_weight="balanced", solver="liblinear")
        model.fit(features, head_targets(classes)[label])
        coefficients.append(model.coef_[0])
        intercepts.append(model.intercept_[0])
    return TextHead(
        ngrams, np.asarray(coefficients, dtype=np.float32), np.asarray(intercepts), regularisation, provenance or {}
    )


def out_of_fold_logits(head: TextHead, texts: Sequence[str], classes: np.ndarray, folds: int = 5) -> np.ndarray:
    """Logits of each text from a head refitted (same settings) without it: honest inputs for a stacker."""
    from sklearn.model_selection import StratifiedKFold

    texts = np.asarray(list(texts), dtype=object)
    logits = np.zeros((len(texts), len(TEXT_HEAD_LABELS)))
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=0).split(texts, classes):
        refit = fit_text_head(list(texts[train]), classes[train], head.regularisation, head.ngrams)
        logits[test] = refit.logits(list(texts[test]))
    return logits
