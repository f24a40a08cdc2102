"""A language model as a few-shot moderation judge, for the grey zone only (about 1 text/s for Qwen 0.5B on 2 cores).

The judge reads one forward pass per text: the probabilities of the first token of each answer label, renormalised.
Few-shot is required: asked zero-shot "toxic? yes/no" the small models do not separate at all (models.md §3c).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from shopflow.models.descriptions.language_model import Conversation, LanguageModel

JUDGE_LABELS = ("ok", "abusive", "threat", "spam")
JUDGE_SYSTEM_PROMPT = (
    "Classify product reviews for moderation. Labels: ok (normal review, also negative but polite), "
    "abusive (insults, swearing, hate), threat (threatens violence or harm), spam (ads, links, promo codes). "
    "Reply with the label only."
)
JUDGE_EXAMPLES = (
    ("Battery died after a week, very disappointed.", "ok"),
    ("Go to hell you scammers, you are all morons.", "abusive"),
    ("Refund me or I will come to your office and hurt you.", "threat"),
    ("Cheap pills at www.x-pharma.top, use code SAVE50!!!", "spam"),
    ("Fits well and the color is exactly as pictured.", "ok"),
)


def judge_conversation(text: str) -> Conversation:
    messages = [{"role": "system", "content": JUDGE_SYSTEM_PROMPT}]
    for example, label in JUDGE_EXAMPLES:
        messages += [{"role": "user", "content": f"Review: {example}"}, {"role": "assistant", "content": label}]
    return messages + [{"role": "user", "content": f"Review: {text}"}]


class LanguageModelJudge:
    """Probabilities of ``JUDGE_LABELS`` per text from a loaded language model."""

    def __init__(self, language_model: LanguageModel, batch_size: int = 8) -> None:
        self.language_model = language_model
        self.batch_size = batch_size

    @property
    def model_id(self) -> str:
        return self.language_model.model_id

    @property
    def precision(self) -> str:
        return self.language_model.precision

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts) × 4) probabilities, columns in ``JUDGE_LABELS`` order."""
        conversations = [judge_conversation(text) for text in texts]
        return self.language_model.next_token_probabilities(conversations, JUDGE_LABELS, self.batch_size)
