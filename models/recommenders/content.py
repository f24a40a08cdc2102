"""Content-only recommender: a user's history scored against every item by text-embedding similarity.

``score(u, i) = Σ_{j ∈ history(u)} W[j, i]`` with ``W`` the cosine similarity of the items' text embeddings,
kept for each item's ``neighbours`` nearest texts. It needs no interactions on the scored item, so cold products
(text, no interactions) are ranked like any other.
"""

from __future__ import annotations

import numpy as np

from shopflow.models.recommenders.base import register
from shopflow.models.recommenders.neighbourhood import CosineNeighbourhood


@register
class ContentRecommender(CosineNeighbourhood):
    """Item-kNN on text: an item's vector is its text embedding."""

    name = "content"
    uses_text = True
    param_grid = {"neighbours": (10, 50, 200)}

    def _item_vectors(self) -> np.ndarray:
        return self.item_embeddings
