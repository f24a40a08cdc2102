"""Prefect flows: wiring only. Each task calls one plain function of shopflow and passes the settings.

Importing this package first applies the runtime defaults (thread caps, offline flags, the project's own
PREFECT_HOME), because Prefect, numpy and torch read them when they are imported.
"""

from shopflow.settings import configure_runtime

configure_runtime()
