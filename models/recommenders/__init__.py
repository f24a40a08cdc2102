"""Recommender families behind one interface; importing this package registers them all by name.

``create_recommender("als", factors=128)``, ``load_recommender(directory)``, ``RECOMMENDERS`` (name → class).
"""

from shopflow.models.recommenders import content, factorization, hybrid, neighbourhood, popularity
from shopflow.models.recommenders.base import (
    RECOMMENDERS,
    Recommender,
    create_recommender,
    load_recommender,
    recommender_class,
)

__all__ = [
    "RECOMMENDERS",
    "Recommender",
    "content",
    "create_recommender",
    "factorization",
    "hybrid",
    "load_recommender",
    "neighbourhood",
    "popularity",
    "recommender_class",
]
