"""The Jigsaw toxicity BiLSTM of ``toxic-comment-classifier`` 0.3.0, run in PyTorch (the package needs TensorFlow).

Architecture (from the package's ``model.py``): Embedding 20000×50 → bidirectional LSTM 2×50 → global max pool →
Dense 50 relu → Dense 6 sigmoid, on the last 100 tokens of a Keras ``Tokenizer``. The weights come from the Keras-3
``model.weights.h5`` (read with h5py); the tokenizer's word index from ``tokenizer.pickle``, through an unpickler that
builds nothing but the Keras ``Tokenizer`` (as an inert stand-in), ``OrderedDict``, ``defaultdict`` and ``int``.
Both files are sha256-checked first. Scores equal the package's own (README example reproduced in the tests).
"""

from __future__ import annotations

import collections
import pickle
from pathlib import Path
from typing import BinaryIO

import numpy as np

from shopflow.models.descriptions.provenance import (
    WeightsIdentity,
    distribution_version,
    package_directory,
    verify_sha256,
)
from shopflow.progress import track

DISTRIBUTION = "toxic-comment-classifier"
IMPORT_NAME = "toxic_classifier"
WEIGHTS_SHA256 = "03ed4c3f52be909821a8c3263de2dcd65b95908bfae6f569c9a9cec90538a4b3"  # model/model.weights.h5
TOKENIZER_SHA256 = "d8e998211d68c5264b84c6eb6753f08897194038e0345e91a592f97cd38c125c"  # model/tokenizer.pickle
LABELS = ("toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate")
MAX_TOKENS = 100  # the model's input length (Keras pad_sequences: pre-padding, keep the last tokens)
VOCABULARY_SIZE = 20000
EMBEDDING_SIZE = 50
LSTM_SIZE = 50
POOLED_SIZE = 2 * LSTM_SIZE
KERAS_DEFAULT_FILTERS = '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n'


class KerasTokenizerState:
    """Inert stand-in for ``keras...text.Tokenizer``: only receives the pickled attributes (word_index etc.)."""


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles the Keras tokenizer file and refuses every other class (a pickle can otherwise run code)."""

    ALLOWED = {
        ("keras.src.legacy.preprocessing.text", "Tokenizer"): KerasTokenizerState,
        ("keras.preprocessing.text", "Tokenizer"): KerasTokenizerState,
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("collections", "defaultdict"): collections.defaultdict,
        ("builtins", "int"): int,
    }

    def find_class(self, module: str, name: str) -> type:
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}: not a Keras tokenizer part") from None


def load_tokenizer_state(handle: BinaryIO) -> KerasTokenizerState:
    """The pickled Keras tokenizer's attributes, read with ``RestrictedUnpickler``."""
    state = RestrictedUnpickler(handle).load()
    if not isinstance(state, KerasTokenizerState):
        raise pickle.UnpicklingError(f"expected a Keras Tokenizer, found {type(state).__name__}")
    return state


def _network():
    import torch
    from torch import nn

    class BiLSTMToxicity(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embedding = nn.Embedding(VOCABULARY_SIZE, EMBEDDING_SIZE)
            self.lstm = nn.LSTM(EMBEDDING_SIZE, LSTM_SIZE, batch_first=True, bidirectional=True)
            self.hidden = nn.Linear(POOLED_SIZE, 50)
            self.output = nn.Linear(50, len(LABELS))

        def forward(self, token_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            """(probabilities of the 6 labels, the max-pooled BiLSTM states that feed them)."""
            states, _ = self.lstm(self.embedding(token_ids))
            pooled = states.max(dim=1).values
            return torch.sigmoid(self.output(torch.relu(self.hidden(pooled)))), pooled

    return BiLSTMToxicity()


class ToxicityBiLSTM:
    """Six Jigsaw toxicity probabilities per text (labels ``LABELS``), on CPU (a 1 M-parameter model)."""

    def __init__(self, model_dir: Path | None = None) -> None:
        model_dir = model_dir or package_directory(IMPORT_NAME) / "model"
        weights, tokenizer = model_dir / "model.weights.h5", model_dir / "tokenizer.pickle"
        verify_sha256([weights], WEIGHTS_SHA256, f"{DISTRIBUTION} weights")
        verify_sha256([tokenizer], TOKENIZER_SHA256, f"{DISTRIBUTION} tokenizer")
        self.identity = WeightsIdentity(
            "jigsaw-bilstm-toxicity", DISTRIBUTION, distribution_version(DISTRIBUTION), WEIGHTS_SHA256
        )
        with tokenizer.open("rb") as handle:
            state = load_tokenizer_state(handle)
        self.word_index: dict[str, int] = state.word_index
        self.num_words = min(getattr(state, "num_words", None) or VOCABULARY_SIZE, VOCABULARY_SIZE)
        self.lower = getattr(state, "lower", True)
        self.split = getattr(state, "split", " ")
        self.filters = str.maketrans(dict.fromkeys(getattr(state, "filters", KERAS_DEFAULT_FILTERS), self.split))
        oov_token = getattr(state, "oov_token", None)
        self.oov_index = self.word_index.get(oov_token) if oov_token else None
        self.network = self._load_network(weights)

    @staticmethod
    def _load_network(weights: Path):
        import h5py
        import torch

        network = _network()
        with h5py.File(weights, "r") as h5, torch.no_grad():
            layers = h5["layers"]

            def tensor(path: str) -> torch.Tensor:
                return torch.from_numpy(np.array(layers[path]))

            network.embedding.weight.copy_(tensor("embedding/vars/0"))
            # Keras LSTM gate order (input, forget, cell, output) equals torch's (i, f, g, o); Keras has one bias.
            for direction, suffix in (("forward_layer", ""), ("backward_layer", "_reverse")):
                cell = f"bidirectional/{direction}/cell/vars"
                getattr(network.lstm, f"weight_ih_l0{suffix}").copy_(tensor(f"{cell}/0").T)
                getattr(network.lstm, f"weight_hh_l0{suffix}").copy_(tensor(f"{cell}/1").T)
                getattr(network.lstm, f"bias_ih_l0{suffix}").copy_(tensor(f"{cell}/2"))
                getattr(network.lstm, f"bias_hh_l0{suffix}").zero_()
            network.hidden.weight.copy_(tensor("dense/vars/0").T)
            network.hidden.bias.copy_(tensor("dense/vars/1"))
            network.output.weight.copy_(tensor("dense_1/vars/0").T)
            network.output.bias.copy_(tensor("dense_1/vars/1"))
        return network.eval()

    def token_ids(self, text: str) -> list[int]:
        """Keras ``texts_to_sequences`` + ``pad_sequences(maxlen=100)`` for one text."""
        if self.lower:
            text = text.lower()
        ids = []
        for word in text.translate(self.filters).split(self.split):
            index = self.word_index.get(word) if word else None
            if index is not None and index < self.num_words:
                ids.append(index)
            elif word and self.oov_index is not None:
                ids.append(self.oov_index)
        ids = ids[-MAX_TOKENS:]
        return [0] * (MAX_TOKENS - len(ids)) + ids

    def predict(self, texts: list[str], batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
        """Per text: the 6 label probabilities (columns in ``LABELS`` order) and the 100 pooled BiLSTM states."""
        import torch

        probabilities = np.empty((len(texts), len(LABELS)), dtype=np.float32)
        pooled = np.empty((len(texts), POOLED_SIZE), dtype=np.float32)
        with torch.inference_mode():
            for start in track(range(0, len(texts), batch_size), f"moderating {len(texts)} texts"):
                batch = torch.tensor([self.token_ids(text) for text in texts[start : start + batch_size]])
                batch_probabilities, batch_pooled = self.network(batch)
                probabilities[start : start + batch_size] = batch_probabilities.numpy()
                pooled[start : start + batch_size] = batch_pooled.numpy()
        return probabilities, pooled
