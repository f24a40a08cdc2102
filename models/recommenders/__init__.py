"""Recommender families behind one interface; importing this package registers them all by name.

``create_recommender("als", factors=128)``, ``load_recommender(directory)``, ``RECOMMENDERS`` (name → class):
popularity, item_knn, ease (:mod:`.neighbourhood`), als, bpr, als_text (:mod:`.factorization`), content
(:mod:`.content`), hybrid, hybrid_cf (:mod:`.hybrid`).
"""

from shopflow.models.recommenders import content, factorization, hybrid, neighbourhood, popularity  # noqa: F401
from shopflow.models.recommenders.base import (
    RECOMMENDERS,
    Recommender,
    create_recommender,
    load_recommender,
    recommender_class,
)

__all__ = ["RECOMMENDERS", "Recommender", "create_recommender", "load_recommender", "recommender_class"]
