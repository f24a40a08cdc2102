"""Fixtures for the registry tests: the MiniLM encoder and a data root holding the two-taste shop."""

from __future__ import annotations

import pytest
from registry_shop import RandomFactorsRecommender, shop_frames, write_shop

from shopflow.models.embeddings import MiniLMEncoder
from shopflow.models.recommenders import RECOMMENDERS
from shopflow.settings import Settings


@pytest.fixture(scope="session")
def minilm() -> MiniLMEncoder:
    """The real all-MiniLM-L6-v2 encoder (loads on first use only; cached vectors never load it)."""
    return MiniLMEncoder()


@pytest.fixture(scope="module")
def shop_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """One data root per test module (warehouse + MLflow store), holding the two-taste shop."""
    settings = Settings(home=tmp_path_factory.mktemp("registry"))
    settings.ensure_dirs()
    write_shop(settings.warehouse_path, shop_frames())
    return settings


@pytest.fixture(scope="module")
def random_factors() -> str:
    """Make the useless ``random_factors`` family available by name while a module needs it."""
    RECOMMENDERS[RandomFactorsRecommender.name] = RandomFactorsRecommender
    yield RandomFactorsRecommender.name
    del RECOMMENDERS[RandomFactorsRecommender.name]
