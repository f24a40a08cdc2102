"""The moderation ensemble: shipped models + rules (+ optionally a language-model judge) → per-label scores and a flag.

Labels and where their score (a probability-like number in [0, 1]) comes from:

| label | source |
|---|---|
| ``toxic`` | linear head over profanity-check, BiLSTM and text head outputs, fitted on Davidson (offensive or hate) |
| ``identity_hate`` | linear head over the same features, fitted on Davidson (hate vs the rest) |
| ``severe_toxic``, ``obscene``, ``insult`` | the Jigsaw BiLSTM as it is |
| ``threat`` | max(BiLSTM threat, threat rules) |
| ``spam``, ``contact_link`` | rules (links, e-mail, phone, promo codes, sales phrases, shouting) |

A text is flagged when any label reaches its threshold (``calibration.json``); ``reasons`` lists those labels.
With a judge and a budget, the texts closest to a ``toxic``/``threat``/``spam`` threshold (within ``GREY_BAND``) are
also read by the language model, whose probabilities are averaged in (threat: the max).
The version hashes every component's identity, the rules, the calibration and the judge: same version, same scores.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import numpy as np
import pandas as pd

from shopflow.models.descriptions.provenance import (
    WeightsIdentity,
    distribution_version,
    package_directory,
    verify_sha256,
)
from shopflow.models.moderation.bilstm import LABELS as BILSTM_LABELS
from shopflow.models.moderation.bilstm import ToxicityBiLSTM
from shopflow.models.moderation.calibration import Calibration, load_calibration, logit
from shopflow.models.moderation.judge import JUDGE_LABELS, LanguageModelJudge
from shopflow.models.moderation.rules import rules_fingerprint, score_rules
from shopflow.models.moderation.text_head import TEXT_HEAD_NAME, TextHead, load_text_head, sentence_encoder

SCORE_LABELS = ("toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate", "spam", "contact_link")
JUDGED_LABELS = ("toxic", "threat", "spam")
GREY_BAND = 0.2  # a score this close to its threshold is uncertain enough to ask the judge
SCORE_CHUNK_TEXTS = 2048  # distinct texts through the models at a time (bounds the n-gram matrices)

PROFANITY_DISTRIBUTION = "alt-profanity-check"
PROFANITY_FILES_SHA256 = {
    "data/model.joblib": "aeafc04849d4d93db4721cf30a86ebf22085595294b8a07d51918e7fa98f538b",
    "data/vectorizer.joblib": "19c5200dc6a41f026e0558e2f164f5fe8d8f58e502b46b37e4385037fcfa4831",
}


class ProfanityModel:
    """alt-profanity-check's calibrated linear SVM: P(profane) per text. Its joblib files are checked first."""

    def __init__(self) -> None:
        directory = package_directory("profanity_check")
        for relative, expected in PROFANITY_FILES_SHA256.items():
            verify_sha256([directory / relative], expected, f"{PROFANITY_DISTRIBUTION} {relative}")
        from profanity_check import predict_prob  # loads the two verified joblib files

        self._predict_prob = predict_prob
        combined = hashlib.sha256("".join(PROFANITY_FILES_SHA256.values()).encode()).hexdigest()
        self.identity = WeightsIdentity(
            "profanity-linear-svm", PROFANITY_DISTRIBUTION, distribution_version(PROFANITY_DISTRIBUTION), combined
        )

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self._predict_prob(list(texts)), dtype=np.float64)


class ShippedModelFeatures:
    """The shipped models' outputs as the heads' input features (``FEATURE_NAMES`` order)."""

    def __init__(self, text_head: TextHead | None = None, encoder=None) -> None:
        self.bilstm = ToxicityBiLSTM()
        self.profanity = ProfanityModel()
        self.text_head = text_head or load_text_head()
        self.encoder = encoder or sentence_encoder()  # the text head's sentence encoder, e.g. a ``CachedEncoder``

    @property
    def identities(self) -> list[WeightsIdentity]:
        """The shipped models, the text head and (when the head reads embeddings) its encoder, precision included."""
        text_head = WeightsIdentity(TEXT_HEAD_NAME, "shopflow", "", self.text_head.fingerprint())
        encoder = [self.encoder.identity] if self.text_head.features.embedding_weight else []
        return [self.bilstm.identity, self.profanity.identity, text_head, *encoder]

    def __call__(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(features: profanity logit, 6 BiLSTM logits, 100 pooled BiLSTM states, 2 text head logits; the BiLSTM
        probabilities)."""
        bilstm_probabilities, pooled = self.bilstm.predict(list(texts))
        profanity = self.profanity.predict(texts)
        ngram_logits = self.text_head.logits(list(texts), self.encoder)
        features = np.column_stack([logit(profanity), logit(bilstm_probabilities), pooled, ngram_logits])
        return features, bilstm_probabilities


class ModerationModel:
    """Scores texts with the ensemble; ``version`` identifies everything that decides the scores."""

    def __init__(
        self,
        calibration: Calibration | None = None,
        judge: LanguageModelJudge | None = None,
        features: ShippedModelFeatures | None = None,
    ) -> None:
        self.features = features or ShippedModelFeatures()
        self.calibration = calibration or load_calibration()
        self.judge = judge

    def describe(self) -> dict:
        """Identity for logs and the model registry: components, rules, calibration, judge and thresholds."""
        return {
            "components": [identity.as_dict() for identity in self.features.identities],
            "rules_sha256": rules_fingerprint(),
            "calibration_sha256": self.calibration.fingerprint(),
            "judge": (
                {"model_id": self.judge.model_id, "precision": self.judge.precision, "grey_band": GREY_BAND}
                if self.judge
                else None
            ),
            "thresholds": self.calibration.thresholds,
        }

    @property
    def version(self) -> str:
        """``mod-`` + 12 hex digits of the sha256 of ``describe()``."""
        payload = json.dumps(self.describe(), sort_keys=True)
        return "mod-" + hashlib.sha256(payload.encode()).hexdigest()[:12]

    def label_scores(
        self, texts: Sequence[str], chunk_size: int = SCORE_CHUNK_TEXTS
    ) -> tuple[dict[str, np.ndarray], list[list[str]]]:
        """Score of every ``SCORE_LABELS`` label per text, and the rules that fired, without the judge.

        Identical texts are scored once, and the distinct texts go through the models ``chunk_size`` at a time, so
        memory stays flat however many texts a night brings (a first night at 50M events has 166k reviews).
        """
        if len(texts) == 0:
            return {label: np.empty(0) for label in SCORE_LABELS}, []
        codes, distinct = pd.factorize(pd.Series(texts, dtype=object), sort=False)
        chunks = [
            self._distinct_label_scores(list(distinct[start : start + chunk_size]))
            for start in range(0, len(distinct), chunk_size)
        ]
        scores = {label: np.concatenate([chunk[0][label] for chunk in chunks])[codes] for label in SCORE_LABELS}
        fired = [rules for chunk in chunks for rules in chunk[1]]
        return scores, [fired[code] for code in codes]

    def _distinct_label_scores(self, texts: list[str]) -> tuple[dict[str, np.ndarray], list[list[str]]]:
        features, bilstm = self.features(texts)
        fired, rules = score_rules(texts)
        column = {label: bilstm[:, i] for i, label in enumerate(BILSTM_LABELS)}
        scores = {
            "toxic": self.calibration.heads["toxic"].probability(features),
            "severe_toxic": column["severe_toxic"],
            "obscene": column["obscene"],
            "threat": np.maximum(column["threat"], rules["threat"]),
            "insult": column["insult"],
            "identity_hate": self.calibration.heads["identity_hate"].probability(features),
            "spam": rules["spam"],
            "contact_link": rules["contact_link"],
        }
        return {label: np.asarray(scores[label], dtype=np.float64) for label in SCORE_LABELS}, fired

    def grey_zone(self, scores: dict[str, np.ndarray]) -> np.ndarray:
        """Indices of texts with a judged label within ``GREY_BAND`` of its threshold, most uncertain first."""
        margins = np.min(
            [np.abs(scores[label] - self.calibration.thresholds[label]) for label in JUDGED_LABELS], axis=0
        )
        candidates = np.flatnonzero(margins < GREY_BAND)
        return candidates[np.argsort(margins[candidates], kind="stable")]

    def apply_judge(self, texts: Sequence[str], scores: dict[str, np.ndarray], budget: int) -> np.ndarray:
        """Ask the judge about up to ``budget`` grey-zone texts, update their scores in place; the judged mask."""
        judged = np.zeros(len(texts), dtype=bool)
        chosen = self.grey_zone(scores)[:budget]
        if self.judge is None or len(chosen) == 0:
            return judged
        verdict = dict(zip(JUDGE_LABELS, self.judge.probabilities([texts[i] for i in chosen]).T, strict=True))
        scores["toxic"][chosen] = (scores["toxic"][chosen] + verdict["abusive"]) / 2
        scores["spam"][chosen] = (scores["spam"][chosen] + verdict["spam"]) / 2
        scores["threat"][chosen] = np.maximum(scores["threat"][chosen], verdict["threat"])
        judged[chosen] = True
        return judged

    def score(self, texts: Sequence[str], judge_budget: int = 0) -> pd.DataFrame:
        """One row per text: label scores, ``flagged``, ``reasons`` (flagged labels), ``rules_fired``, ``judged``."""
        texts = ["" if text is None else str(text) for text in texts]
        if not texts:
            columns = {label: pd.Series(dtype="float64") for label in SCORE_LABELS}
            return pd.DataFrame(
                columns
                | {"flagged": pd.Series(dtype=bool), "reasons": pd.Series(dtype=str)}
                | {"rules_fired": pd.Series(dtype=str), "judged": pd.Series(dtype=bool)}
            )
        scores, fired = self.label_scores(texts)
        judged = self.apply_judge(texts, scores, judge_budget)
        over = np.column_stack([scores[label] >= self.calibration.thresholds[label] for label in SCORE_LABELS])
        frame = pd.DataFrame(scores)
        frame["flagged"] = over.any(axis=1)
        frame["reasons"] = [",".join(np.asarray(SCORE_LABELS)[row]) for row in over]
        frame["rules_fired"] = [",".join(names) for names in fired]
        frame["judged"] = judged
        return frame

    def flag_reasons(self, texts: Sequence[str]) -> list[str]:
        """Per text, its flagged labels comma-joined ("" when allowed): the description guard's moderator."""
        return self.score(texts)["reasons"].tolist()
