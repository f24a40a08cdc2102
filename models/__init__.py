"""ML code of the nightly pipeline (imported as ``shopflow.models``).

- ``recommenders/`` — one ``Recommender`` interface and a name → class registry (popularity, item-kNN, EASE, ALS, BPR,
  content, hybrid), ``embeddings`` (MiniLM item text embeddings with a content-hash cache), ``interactions``/``split``/
  ``evaluation``/``metrics``/``tuning`` (temporal evaluation), ``pipeline`` (the recommender stage the flow calls).
- ``descriptions/`` — LLM product descriptions with a fact guard; ``moderation/`` — versioned moderation scores.
"""
