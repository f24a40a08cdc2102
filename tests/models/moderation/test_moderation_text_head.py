"""The text head: it learns a known marker word (from n-grams and from the MiniLM embedding), round-trips through its
.npz, refuses a head for another encoder, and is part of the version."""

from __future__ import annotations

import copy
import json
from dataclasses import replace

import numpy as np
import pytest
from sklearn.model_selection import StratifiedKFold

from shopflow.models.embeddings import EmbeddingCache
from shopflow.models.moderation.ensemble import ModerationModel
from shopflow.models.moderation.text_head import (
    EMBEDDING_SIZE,
    TEXT_HEAD_LABELS,
    TEXT_HEAD_NAME,
    CachedEncoder,
    TextFeatures,
    fit_text_head,
    load_text_head,
    out_of_fold_logits,
    sentence_encoder,
)

SMALL = TextFeatures(word_ngrams=(1, 1), char_ngrams=(3, 3), n_features=2**10, embedding_weight=0.0)
WITH_EMBEDDING = replace(SMALL, embedding_weight=1.0)
FILLERS = ("the kettle", "my order", "this lamp", "the tent", "that backpack", "a planter")


def marker_corpus() -> tuple[list[str], np.ndarray]:
    """Class 0 (hate) says "zorgs", class 1 (offensive) says "blarg", class 2 (neither) says neither."""
    texts, classes = [], []
    for index, filler in enumerate(FILLERS * 4):
        texts += [f"all zorgs ruin {filler}", f"{filler} is blarg", f"{filler} arrived today {index}"]
        classes += [0, 1, 2]
    return texts, np.array(classes)


def test_a_fitted_head_learns_the_marker_words():
    head = fit_text_head(*marker_corpus(), features=SMALL)
    hate, toxic = head.logits(["zorgs everywhere", "blarg", "arrived today"]).T
    assert hate[0] > 0 > hate[1] and hate[0] > hate[2]
    assert toxic[0] > 0 and toxic[1] > 0 and toxic[2] < 0


def test_out_of_fold_logits_come_from_refits_without_the_text():
    texts, classes = marker_corpus()
    head = fit_text_head(texts, classes, features=SMALL)
    held_out = out_of_fold_logits(head, texts, classes, folds=3)
    assert held_out.shape == (len(texts), len(TEXT_HEAD_LABELS))
    assert not np.allclose(held_out, head.logits(texts))  # refits, not the head itself
    assert (held_out[classes == 2, 1] < 0).all()  # still right: every fold sees the markers


def test_the_head_round_trips_through_its_npz_without_pickle(tmp_path):
    head = fit_text_head(*marker_corpus(), features=SMALL, provenance={"note": "test"})
    head.save(tmp_path / "head.npz")
    loaded = load_text_head(tmp_path / "head.npz")
    assert loaded.fingerprint() == head.fingerprint() and loaded.features == SMALL
    assert loaded.provenance == {"note": "test"}
    assert np.allclose(loaded.logits(["blarg zorgs"]), head.logits(["blarg zorgs"]))
    np.load(tmp_path / "head.npz", allow_pickle=False)["parameters"]  # plain arrays only


def test_a_head_of_the_wrong_shape_is_refused(tmp_path):
    head = fit_text_head(*marker_corpus(), features=SMALL)
    replace(head, coefficients=head.coefficients[:1]).save(tmp_path / "head.npz")
    with pytest.raises(ValueError, match="other labels or features"):
        load_text_head(tmp_path / "head.npz")


def test_the_embedding_block_alone_carries_meaning():
    """With the n-gram coefficients zeroed, the embedding's weights alone still rank the hate sentence first."""
    head = fit_text_head(*marker_corpus(), features=WITH_EMBEDDING)
    assert head.coefficients.shape == (len(TEXT_HEAD_LABELS), 2 * SMALL.n_features + EMBEDDING_SIZE)
    embedding_columns = np.arange(WITH_EMBEDDING.width) >= 2 * SMALL.n_features
    only_embedding = replace(head, coefficients=head.coefficients * embedding_columns)
    hate, _ = only_embedding.logits(["all zorgs ruin the kettle", "the kettle arrived today 3"]).T
    assert hate[0] > hate[1]


def test_cached_encoder_gives_the_encoders_vectors_and_keeps_them(tmp_path):
    texts = ["the kettle arrived today", "blarg", "the kettle arrived today"]
    cached = CachedEncoder(sentence_encoder(), tmp_path)
    assert np.allclose(cached.encode(texts), sentence_encoder().encode(texts), atol=1e-5)
    assert len(EmbeddingCache(tmp_path, cached.model_id).read()) == 2


def test_out_of_fold_logits_with_an_embedding_match_refits_by_hand():
    texts, classes = marker_corpus()
    head = fit_text_head(texts, classes, features=WITH_EMBEDDING)
    held_out = out_of_fold_logits(head, texts, classes, folds=3)
    train, test = next(StratifiedKFold(3, shuffle=True, random_state=0).split(np.zeros(len(classes)), classes))
    refit = fit_text_head([texts[i] for i in train], classes[train], features=WITH_EMBEDDING)
    assert np.allclose(held_out[test], refit.logits([texts[i] for i in test]), atol=1e-4)


def test_a_head_for_another_encoder_is_refused(tmp_path):
    fit_text_head(*marker_corpus(), features=WITH_EMBEDDING).save(tmp_path / "head.npz")
    with np.load(tmp_path / "head.npz", allow_pickle=False) as stored:
        arrays = dict(stored)
    parameters = json.loads(str(arrays["parameters"]))
    arrays["parameters"] = np.array(json.dumps({**parameters, "embedding_model": "another-encoder"}))
    np.savez_compressed(tmp_path / "other.npz", **arrays)
    assert load_text_head(tmp_path / "head.npz").features == WITH_EMBEDDING
    with pytest.raises(ValueError, match="other labels or features"):
        load_text_head(tmp_path / "other.npz")


def test_the_shipped_head_is_small_and_trained_on_the_calibration_half_only():
    head = load_text_head()
    assert head.coefficients.dtype == np.float32 and head.coefficients.shape[0] == len(TEXT_HEAD_LABELS)
    assert "calibration half" in head.provenance["split"] and len(head.provenance["calibration_rows_sha256"]) == 64
    assert head.features.embedding_weight > 0 and head.coefficients.shape[1] == head.features.width


def test_the_shipped_head_ranks_abuse_above_neutral_text():
    hate, toxic = load_text_head().logits(["all those dirty faggots should die", "the kettle arrived today"]).T
    assert hate[0] > 0 > hate[1]
    assert toxic[0] > 0 > toxic[1]


def test_a_changed_head_changes_the_moderation_version(moderation_model, shipped_features):
    changed = copy.copy(shipped_features)
    changed.text_head = replace(shipped_features.text_head, intercepts=shipped_features.text_head.intercepts + 0.1)
    assert ModerationModel(features=changed).version != moderation_model.version
    names = [component["name"] for component in moderation_model.describe()["components"]]
    assert names[-2] == TEXT_HEAD_NAME and names[-1].startswith("all-MiniLM-L6-v2-")
