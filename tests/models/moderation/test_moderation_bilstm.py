"""The PyTorch port of the Jigsaw BiLSTM and the restricted unpickler for its Keras tokenizer."""

from __future__ import annotations

import collections
import io
import os
import pickle

import numpy as np
import pytest

from shopflow.models.descriptions.provenance import ProvenanceError
from shopflow.models.moderation.bilstm import ToxicityBiLSTM, load_tokenizer_state


class RunsACommand:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


@pytest.mark.parametrize(
    ("payload", "refused"),
    [(RunsACommand(), "os.system|posix.system"), (collections.Counter(a=1), "collections.Counter")],
)
def test_the_unpickler_refuses_any_foreign_class(payload, refused):
    with pytest.raises(pickle.UnpicklingError, match=f"refusing to unpickle ({refused})"):
        load_tokenizer_state(io.BytesIO(pickle.dumps(payload)))


def test_the_unpickler_requires_a_keras_tokenizer():
    with pytest.raises(pickle.UnpicklingError, match="expected a Keras Tokenizer, found OrderedDict"):
        load_tokenizer_state(io.BytesIO(pickle.dumps(collections.OrderedDict(a=1))))


def test_the_port_reproduces_the_packages_published_scores(shipped_features):
    probabilities, pooled = shipped_features.bilstm.predict(["You are so dumb and stupid!"])
    # toxic-comment-classifier 0.3.0 README: toxic, severe_toxic, obscene, threat, insult, identity_hate
    np.testing.assert_allclose(probabilities[0], [0.989, 0.073, 0.620, 0.019, 0.866, 0.041], atol=0.001)
    assert pooled.shape == (1, 100)


def test_tampered_weights_are_refused(tmp_path):
    (tmp_path / "model.weights.h5").write_bytes(b"not the weights")
    (tmp_path / "tokenizer.pickle").write_bytes(b"not the tokenizer")
    with pytest.raises(ProvenanceError, match="toxic-comment-classifier weights: sha256 mismatch"):
        ToxicityBiLSTM(model_dir=tmp_path)
