"""The MLflow model registry of the nightly run: lineage, champion/challenger aliases, the promotion gate.

Entry points (all take ``settings``; MLflow is imported inside them):

* :func:`shopflow.registry.nightly.register_and_promote`: after the audit and the recommender stage, log the
  night's MLflow run, register the selected recommender as ``shopflow-recommender@challenger`` and decide,
  by the promotion gate (:mod:`.gate`), whether it becomes ``@champion``;
* :func:`shopflow.registry.nightly.write_champion_recommendations`: write ``marts.recommendations`` and
  ``marts.similar_products`` from ``models:/shopflow-recommender@champion`` (before publish);
* :func:`shopflow.registry.nightly.log_content_model`: record a content stage's model identity;
* :func:`shopflow.registry.retention.prune_model_versions`: after registering, delete versions (and their
  artifacts) that are neither aliased, among the newest, nor in the champion's rollback history;
* :mod:`.manage`: list / show / promote / rollback for ML engineers (``shopflow models ...``).
"""
