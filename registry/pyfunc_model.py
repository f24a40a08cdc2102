"""The recommender as an MLflow pyfunc: user ids in, their top-k product ids and scores out.

The model is logged "from code" (:mod:`.recommender_entry`), so MLflow stores no pickle: its artifacts are the
directory written by :meth:`Recommender.save` (``recommender``) and, for models without text, the content model
that gives never-sold products their similar products (``text_fallback``), both loaded with
:func:`~shopflow.models.recommenders.load_recommender`.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from shopflow.models.recommenders import Recommender, load_recommender

DEFAULT_K = 20
RECOMMENDER_ARTIFACT = "recommender"
TEXT_FALLBACK_ARTIFACT = "text_fallback"
OUTPUT_COLUMNS = ("user_id", "rank", "product_id", "score")


class RecommenderModel(mlflow.pyfunc.PythonModel):
    """pyfunc wrapper of a saved :class:`Recommender`; ``predict`` takes a frame with a ``user_id`` column.

    Users the model was not fitted on get no rows (they are new since the model's night); ``params={"k": n}``.
    """

    recommender: Recommender
    text_fallback: Recommender | None

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        self.recommender = load_recommender(Path(context.artifacts[RECOMMENDER_ARTIFACT]))
        fallback = context.artifacts.get(TEXT_FALLBACK_ARTIFACT)
        self.text_fallback = load_recommender(Path(fallback)) if fallback else None

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        k = int((params or {}).get("k", DEFAULT_K))
        return recommend_known_users(self.recommender, model_input["user_id"].astype(str).to_numpy(), k)


def recommend_known_users(recommender: Recommender, user_ids: np.ndarray, k: int) -> pd.DataFrame:
    """Top-k rows (OUTPUT_COLUMNS) for the distinct ``user_ids`` the recommender knows, in their given order."""
    wanted = pd.unique(user_ids)
    known = wanted[recommender.fitted.user_rows(wanted) >= 0]
    return recommender.recommend(known, k=k)[list(OUTPUT_COLUMNS)]
