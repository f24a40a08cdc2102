"""Fixtures for the moderation tests: the shipped models loaded once, and the ensemble with its stored calibration."""

from __future__ import annotations

import pytest

from shopflow.models.moderation.ensemble import ModerationModel, ShippedModelFeatures


@pytest.fixture(scope="session")
def shipped_features() -> ShippedModelFeatures:
    """The BiLSTM and profanity-check, loaded once per session (~1 s after torch is imported)."""
    return ShippedModelFeatures()


@pytest.fixture(scope="session")
def moderation_model(shipped_features) -> ModerationModel:
    return ModerationModel(features=shipped_features)
