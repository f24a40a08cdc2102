"""Fixtures for the audit tests."""

import pytest


@pytest.fixture(scope="session")
def suites():
    """``shopflow.expectations.suites``, imported on first use: it imports Great Expectations (4–20 s)."""
    from shopflow.expectations import suites

    return suites
