"""One interface for every recommender family, a name → class registry, and directory save/load without pickle.

Cf. implicit's ``RecommenderBase`` and the ``MODELS`` registry of its ``examples/lastfm.py``. A recommender is
fitted on an :class:`~shopflow.models.interactions.InteractionMatrix` (rows = users, columns = the catalogue,
cold products included as empty columns) and, when ``uses_text``, on item text embeddings aligned with its
columns. Subclasses implement three methods, everything else is shared:

* ``_fit()``: learn from ``self.interactions`` (and ``self.item_embeddings``);
* ``score_users(user_rows)``: a (users × items) score matrix, higher = better, for rows of the fitted matrix;
* ``score_similar(item_columns)``: a (items × items) similarity matrix, higher = more similar;

and, for persistence, either ``_state()``/``_restore()`` (their fitted arrays) or ``_save_state()``/
``_load_state()`` (their own files). Hyper-parameters are a frozen dataclass ``Params``; ``param_grid`` lists the
values tried on the validation split (:mod:`shopflow.models.tuning`).

A saved recommender is a directory: ``recommender.json`` (name, version, hyper-parameters), ``interactions.npz``
(the fitted matrix with its ids, plus the item embeddings of text models) and the model's own arrays
(``state.npz``, or implicit's ``.npz`` for ALS/BPR). Members of a composite model (the hybrid) leave out
``interactions.npz``: they share the composite's. Everything loads with ``allow_pickle=False``.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np
import pandas as pd
from scipy import sparse

from shopflow.models.interactions import InteractionMatrix
from shopflow.models.metrics import NO_ITEM
from shopflow.models.ranking import in_batches, mask_seen, top_k

if TYPE_CHECKING:
    from shopflow.models.evaluation import EvaluationTargets
    from shopflow.models.recommenders.warm_start import Factors, WarmStart

RECOMMENDERS: dict[str, type[Recommender]] = {}


@dataclass(frozen=True)
class NoParams:
    """Hyper-parameters of a model that has none."""


class Recommender(ABC):
    """A fitted-on-one-matrix recommender: top-k for its users, similar items, save/load."""

    name: ClassVar[str]
    version: ClassVar[str] = "1"  # bump when the algorithm or the saved arrays change meaning
    uses_text: ClassVar[bool] = False  # needs item text embeddings in fit()
    Params: ClassVar[type] = NoParams  # a frozen dataclass of hyper-parameters (JSON-serialisable values)
    param_grid: ClassVar[dict[str, tuple]] = {}  # values tried on the validation split, per hyper-parameter
    depends_on: ClassVar[tuple[str, ...]] = ()  # families whose tuned parameters this one starts from
    concurrent_grid: ClassVar[bool] = False  # fit is single-threaded and GIL-free: grid points fit side by side

    def __init__(self, **params: Any) -> None:
        # JSON turns tuples into lists: restore them so that saved and live parameters compare equal
        self.params = self.Params(**{key: tuple(v) if isinstance(v, list) else v for key, v in params.items()})
        self.interactions: InteractionMatrix | None = None
        self.item_embeddings: np.ndarray | None = None
        self.warm_started_from: date | None = None  # night of the factors the last fit started from (None: random)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params})"

    # ---------- the three methods a model family implements
    @abstractmethod
    def _fit(self) -> None:
        """Learn from ``self.interactions`` (and ``self.item_embeddings`` when ``uses_text``)."""

    @abstractmethod
    def score_users(self, user_rows: np.ndarray) -> np.ndarray:
        """(len(user_rows) × n_items) float32 scores for rows of the fitted matrix; seen items are not masked."""

    @abstractmethod
    def score_similar(self, item_columns: np.ndarray) -> np.ndarray:
        """(len(item_columns) × n_items) float32 similarities of the given items to every item."""

    # ---------- tuning hooks (defaults: plain grid search over param_grid)
    @classmethod
    def base_params_from(cls, tuned: dict[str, dict]) -> dict[str, Any]:
        """Parameters to start the grid from, given the already tuned ``depends_on`` families (name → params)."""
        return {}

    def tune_post_fit(self, validation: EvaluationTargets) -> None:
        """Tune, on validation targets, parameters that need no refit (fusion weights); default: none."""
        return None

    # ---------- shared behaviour
    def fit(
        self,
        interactions: InteractionMatrix,
        item_embeddings: np.ndarray | None = None,
        reuse: Mapping[str, Recommender] | None = None,
        warm_start: WarmStart | None = None,
    ) -> Self:
        """Fit on ``interactions``; ``item_embeddings`` (n_items × d, rows aligned with its items) for text models.

        ``reuse``: recommenders already fitted on this same ``interactions`` object, by family name; composite
        models (the hybrid) take a member from it instead of refitting it when its hyper-parameters match.
        ``warm_start``: factors of an earlier night; a family that can (ALS, with factors of its shape) starts from
        them and runs ``warm_start.iterations`` iterations, the others ignore it (``warm_started_from`` says which).
        """
        if self.uses_text:
            if item_embeddings is None or len(item_embeddings) != interactions.n_items:
                raise ValueError(f"{self.name} needs one text embedding per item of the matrix")
            self.item_embeddings = np.asarray(item_embeddings, dtype=np.float32)
        self.interactions = interactions
        self._warm_start = warm_start
        try:
            self._fit()
        finally:
            del self._warm_start
        return self

    def fitted_factors(self, fitted_on: date) -> Factors | None:
        """The fitted factors a later night's fit can start from (fitted on the night ``fitted_on``); None for
        families without any."""
        return None

    def known_items(self) -> np.ndarray:
        """Mask of the items the model has evidence about: every item for text models, else those with interactions.

        Scores of the other items carry no information (a fusion treats them as neutral, not as bad).
        """
        if self.uses_text:
            return np.ones(self.fitted.n_items, dtype=bool)
        return self.fitted.item_user_counts() > 0

    @property
    def fitted(self) -> InteractionMatrix:
        if self.interactions is None:
            raise RuntimeError(f"{self.name} is not fitted")
        return self.interactions

    def top_items(self, user_rows: np.ndarray, k: int, exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Top-k item columns and scores per user row, items the user interacted with excluded by default."""
        scores = self.score_users(user_rows)
        if exclude_seen:
            mask_seen(scores, self.fitted.user_items[user_rows])
        return top_k(scores, k)

    def recommend(self, user_ids: np.ndarray | None = None, k: int = 20, exclude_seen: bool = True) -> pd.DataFrame:
        """Top-k per user: columns user_id, rank (1 = best), product_id, score. Default: every fitted user."""
        matrix = self.fitted
        rows = np.arange(matrix.n_users) if user_ids is None else matrix.user_rows(np.asarray(user_ids, dtype=str))
        if (rows < 0).any():
            raise KeyError(f"{(rows < 0).sum()} user id(s) not in the fitted matrix")
        parts = in_batches(lambda batch: self.top_items(rows[batch], k, exclude_seen), len(rows))
        return _ranked_frame(matrix.user_ids[rows], parts, matrix.item_ids, ("user_id", "product_id"), k)

    def similar_items(self, item_ids: np.ndarray | None = None, k: int = 20) -> pd.DataFrame:
        """Top-k similar products per product (itself excluded): product_id, rank, similar_product_id, score."""
        matrix = self.fitted
        columns = (
            np.arange(matrix.n_items) if item_ids is None else matrix.item_columns(np.asarray(item_ids, dtype=str))
        )
        if (columns < 0).any():
            raise KeyError(f"{(columns < 0).sum()} product id(s) not in the fitted matrix")

        def top_similar(batch: slice) -> tuple[np.ndarray, np.ndarray]:
            scores = self.score_similar(columns[batch])
            scores[np.arange(len(scores)), columns[batch]] = -np.inf
            return top_k(scores, k)

        parts = in_batches(top_similar, len(columns))
        return _ranked_frame(matrix.item_ids[columns], parts, matrix.item_ids, ("product_id", "similar_product_id"), k)

    # ---------- persistence
    def save(self, directory: Path, shares_data: bool = False) -> Path:
        """Write the fitted model to ``directory`` (created) as JSON + npz; :func:`load_recommender` reads it.

        ``shares_data``: leave out the interactions and embeddings, which a composite model saves once for all its
        members (at 10M events each copy is ~70 MB) and passes back to :func:`load_recommender` as ``shared``.
        """
        matrix = self.fitted
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        manifest = {"name": self.name, "version": self.version, "params": asdict(self.params)}
        (directory / "recommender.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
        if not shares_data:
            arrays = {
                "data": matrix.user_items.data,
                "indices": matrix.user_items.indices,
                "indptr": matrix.user_items.indptr,
                "user_ids": matrix.user_ids.astype(str),
                "item_ids": matrix.item_ids.astype(str),
            }
            if matrix.days_since_last is not None:
                arrays["days_since_last"] = matrix.days_since_last.data
            if self.item_embeddings is not None:
                arrays["item_embeddings"] = self.item_embeddings
            np.savez(directory / "interactions.npz", **arrays)
        self._save_state(directory)
        return directory

    def _save_state(self, directory: Path) -> None:
        np.savez(directory / "state.npz", **self._state())

    def _load_state(self, directory: Path) -> None:
        with np.load(directory / "state.npz", allow_pickle=False) as state:
            self._restore({key: state[key] for key in state.files})

    def _state(self) -> dict[str, np.ndarray]:
        """The fitted arrays that ``_restore`` needs (beyond the interactions and embeddings)."""
        raise NotImplementedError(f"{type(self).__name__}: implement _state/_restore or _save_state/_load_state")

    def _restore(self, state: dict[str, np.ndarray]) -> None:
        """Set the fitted arrays from ``_state()``'s output."""
        raise NotImplementedError(f"{type(self).__name__}: implement _state/_restore or _save_state/_load_state")


def register(cls: type[Recommender]) -> type[Recommender]:
    """Class decorator: make ``cls`` available by its ``name`` (``create_recommender``, saved directories)."""
    RECOMMENDERS[cls.name] = cls
    return cls


def recommender_class(name: str) -> type[Recommender]:
    try:
        return RECOMMENDERS[name]
    except KeyError:
        raise KeyError(f"unknown recommender {name!r}; registered: {sorted(RECOMMENDERS)}") from None


def create_recommender(name: str, **params: Any) -> Recommender:
    """A new, unfitted recommender of the registered family ``name`` with ``params`` over its defaults."""
    return recommender_class(name)(**params)


def load_recommender(directory: Path, shared: Recommender | None = None) -> Recommender:
    """The fitted recommender saved in ``directory`` by :meth:`Recommender.save`; ``shared``: the loaded composite
    whose interactions (and embeddings) a member saved with ``shares_data`` was fitted on."""
    directory = Path(directory)
    manifest = json.loads((directory / "recommender.json").read_text())
    cls = recommender_class(manifest["name"])
    if manifest["version"] != cls.version:
        raise ValueError(f"{directory} holds {cls.name} version {manifest['version']}, this code is {cls.version}")
    model = cls(**manifest["params"])
    if shared is None:
        model.interactions, model.item_embeddings = _read_fitted_data(directory)
    else:
        if cls.uses_text and shared.item_embeddings is None:
            raise ValueError(f"{directory} holds text model {cls.name}, but {shared.name} has no item embeddings")
        model.interactions = shared.fitted
        model.item_embeddings = shared.item_embeddings if cls.uses_text else None
    model._load_state(directory)
    return model


def _read_fitted_data(directory: Path) -> tuple[InteractionMatrix, np.ndarray | None]:
    """The interactions (with ids and recency) and the item embeddings, if any, of ``interactions.npz``."""
    with np.load(directory / "interactions.npz", allow_pickle=False) as saved:
        user_ids, item_ids = saved["user_ids"], saved["item_ids"]
        shape = (len(user_ids), len(item_ids))
        matrix = sparse.csr_matrix((saved["data"], saved["indices"], saved["indptr"]), shape=shape)
        days_since_last = None
        if "days_since_last" in saved.files:
            days_since_last = sparse.csr_matrix((saved["days_since_last"], matrix.indices, matrix.indptr), shape=shape)
        embeddings = saved["item_embeddings"] if "item_embeddings" in saved.files else None
    return InteractionMatrix(matrix, user_ids, item_ids, days_since_last), embeddings


def _ranked_frame(
    query_ids: np.ndarray,
    parts: list[tuple[np.ndarray, np.ndarray]],
    item_ids: np.ndarray,
    columns: tuple[str, str],
    k: int,
) -> pd.DataFrame:
    items = np.concatenate([part[0] for part in parts]) if parts else np.empty((0, k), dtype=np.int64)
    scores = np.concatenate([part[1] for part in parts]) if parts else np.empty((0, k), dtype=np.float32)
    listed = items != NO_ITEM
    query_column, item_column = columns
    # ids repeated by reference to one string per distinct id, not copied per row: building 5.36M rows
    # (268k users × 20) peaked 966 MB above the inputs with copies, 509 MB with references
    query_rows = np.repeat(np.arange(len(query_ids)), listed.sum(axis=1))
    return pd.DataFrame(
        {
            query_column: np.asarray(query_ids, dtype=object)[query_rows],
            "rank": (np.cumsum(listed, axis=1)[listed]).astype(np.int32),
            item_column: np.asarray(item_ids, dtype=object)[items[listed]],
            "score": scores[listed].astype(np.float64),
        }
    )
