"""Data-quality suites (Great Expectations 1.x, defined in code) and the nightly audit; imports as
``shopflow.expectations``.

``shopflow.expectations.audit.audit_night(settings, run_date)`` validates a built night; thresholds and
severities are in ``thresholds.py``, the suites in ``suites.py`` (the only module that imports GX).
"""
