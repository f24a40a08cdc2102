"""Calibration of the moderation ensemble: two linear read-outs and the per-label thresholds, kept as JSON.

The shipped models do not answer our questions directly: profanity-check gives one probability, the Jigsaw BiLSTM
six Wikipedia-comment labels, the text head (``text_head.py``: n-grams + MiniLM embedding) two logits.
``bench/moderation.py`` fits, on the calibration split of the Davidson et al. tweets, ``toxic`` (hate or offensive vs
neither) and ``identity_hate`` (hate vs the rest) as logistic regressions over those outputs (``FEATURE_NAMES``; the
text head's logits out of fold, since it was trained on the same half), picks the thresholds, and writes
``calibration.json`` next to this file.
The file's sha256 is part of the moderation version, so a new calibration rescoring everything is automatic.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from shopflow.models.moderation.bilstm import LABELS as BILSTM_LABELS
from shopflow.models.moderation.bilstm import POOLED_SIZE
from shopflow.models.moderation.text_head import TEXT_HEAD_LABELS

CALIBRATION_PATH = Path(__file__).with_name("calibration.json")
FEATURE_NAMES = (
    ("profanity_logit",)
    + tuple(f"bilstm_{label}_logit" for label in BILSTM_LABELS)
    + tuple(f"bilstm_pooled_{i}" for i in range(POOLED_SIZE))
    + tuple(f"ngram_{label}_logit" for label in TEXT_HEAD_LABELS)
)
HEAD_LABELS = ("toxic", "identity_hate")
LOGIT_CLIP = 1e-6  # probabilities are clipped to [1e-6, 1 - 1e-6] before the logit (|logit| <= 13.8)


def logit(probabilities: np.ndarray) -> np.ndarray:
    clipped = np.clip(np.asarray(probabilities, dtype=np.float64), LOGIT_CLIP, 1 - LOGIT_CLIP)
    return np.log(clipped / (1 - clipped))


def sigmoid(values: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-values))


@dataclass(frozen=True)
class LinearHead:
    """P(label) = sigmoid(weights · features + bias), a logistic regression over ``FEATURE_NAMES``."""

    weights: tuple[float, ...]
    bias: float

    def probability(self, features: np.ndarray) -> np.ndarray:
        return sigmoid(features @ np.asarray(self.weights) + self.bias)


@dataclass(frozen=True)
class Calibration:
    """Heads, thresholds (probability at or above which a label is flagged) and how they were obtained."""

    feature_names: tuple[str, ...]
    heads: dict[str, LinearHead]
    thresholds: dict[str, float]
    provenance: dict = field(default_factory=dict)  # data set, its sha256, split, seed, metrics on that split

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Calibration:
        raw = json.loads(text)
        heads = {name: LinearHead(tuple(head["weights"]), head["bias"]) for name, head in raw["heads"].items()}
        return cls(tuple(raw["feature_names"]), heads, raw["thresholds"], raw.get("provenance", {}))

    def fingerprint(self) -> str:
        """sha256 of what decides scores (features, heads, thresholds); the provenance notes do not count."""
        decisive = {"feature_names": self.feature_names, "heads": asdict(self)["heads"], "thresholds": self.thresholds}
        return hashlib.sha256(json.dumps(decisive, sort_keys=True).encode()).hexdigest()


def load_calibration(path: Path = CALIBRATION_PATH) -> Calibration:
    """The stored calibration; refuses one fitted on other features than the current ``FEATURE_NAMES``."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `python bench/moderation.py --write-calibration`")
    calibration = Calibration.from_json(path.read_text())
    if calibration.feature_names != FEATURE_NAMES or set(calibration.heads) != set(HEAD_LABELS):
        raise ValueError(f"{path} was fitted on other features: rerun `python bench/moderation.py --write-calibration`")
    return calibration


def fit_linear_head(features: np.ndarray, labels: np.ndarray, regularisation: float = 1.0) -> LinearHead:
    """Logistic regression with balanced class weights (prior-neutral: the shop's abuse rate is not the data's)."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=regularisation, class_weight="balanced", max_iter=5000)
    model.fit(features, labels)
    return LinearHead(tuple(float(w) for w in model.coef_[0]), float(model.intercept_[0]))


def out_of_fold_probability(
    features: np.ndarray, labels: np.ndarray, regularisation: float = 1.0, folds: int = 5
) -> np.ndarray:
    """P(label) of each row from a head fitted without it: a threshold picked on these is not overfitted."""
    from sklearn.model_selection import StratifiedKFold

    probability = np.zeros(len(labels))
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=0).split(features, labels):
        probability[test] = fit_linear_head(features[train], labels[train], regularisation).probability(features[test])
    return probability


def f1_optimal_threshold(labels: np.ndarray, scores: np.ndarray, balanced: bool = False) -> float:
    """The score threshold with the highest F1 of ``scores >= threshold`` against the 0/1 ``labels``.

    ``balanced`` weights both classes equally, for data whose positive rate is unlike the shop's (83 % of the
    Davidson tweets are offensive: an F1-optimal threshold there flags "the mat feels cheap" in a review).
    """
    from sklearn.metrics import precision_recall_curve
    from sklearn.utils.class_weight import compute_sample_weight

    weights = compute_sample_weight("balanced", labels) if balanced else None
    precision, recall, thresholds = precision_recall_curve(labels, scores, sample_weight=weights)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    return float(thresholds[int(np.argmax(f1[:-1]))])
