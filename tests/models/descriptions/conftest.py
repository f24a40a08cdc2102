"""Fixtures for the description tests: products, a scripted generator, and the real fast model (SmolLM2)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from shopflow.models.descriptions.language_model import FAST_MODEL, GenerationStats, load_language_model
from shopflow.models.descriptions.prompts import ProductFacts
from shopflow.models.descriptions.provenance import WeightsIdentity

KETTLE = ProductFacts(
    product_id="P1",
    title="Acme Electric Kettle 1.7 L",
    category="Kitchen > Kettles",
    brand="Acme",
    price="29.99",
    currency="EUR",
    attributes={"power": "2200 W", "material": "stainless steel", "features": "auto shut-off, boil-dry protection"},
)
FAITHFUL_KETTLE_TEXT = (
    "The Acme Electric Kettle holds 1.7 liters and is powered by 2200 watts. It is made of stainless steel, "
    "has auto shut-off and boil-dry protection, and costs 29.99 EUR."
)


@pytest.fixture
def kettle() -> ProductFacts:
    return KETTLE


@pytest.fixture
def faithful_kettle_text() -> str:
    """What a good model writes for ``kettle``: every number, unit and fact from the input."""
    return FAITHFUL_KETTLE_TEXT


class ScriptedGenerator:
    """A stand-in language model: ``reply(conversation)`` decides each completion; conversations are recorded."""

    def __init__(self, reply: Callable[[list[dict]], str], name: str = "scripted") -> None:
        self.reply = reply
        self.identity = WeightsIdentity(name, "test", "0", "0" * 64)
        self.stats = GenerationStats()
        self.conversations: list[list[dict]] = []

    def generate(self, conversations: Sequence[list[dict]], max_new_tokens: int = 80, batch_size: int = 8):
        self.conversations += list(conversations)
        self.stats.sequences += len(conversations)
        return [self.reply(conversation) for conversation in conversations]


@pytest.fixture
def scripted_generator() -> type[ScriptedGenerator]:
    return ScriptedGenerator


@pytest.fixture(scope="session")
def llm_cache_dir() -> Path:
    """Where tests keep dequantised models: the session's shared cache (tests/conftest.py; ``SHOPFLOW_TEST_LLM_CACHE``
    reuses one across sessions)."""
    return Path(os.environ["SHOPFLOW_LANGUAGE_MODEL_CACHE"])


@pytest.fixture(scope="session")
def fast_language_model(llm_cache_dir):
    """SmolLM2-135M on CPU, loaded once per session (dequantising it takes ~25 s; from a reused cache ~2 s)."""
    return load_language_model(FAST_MODEL, llm_cache_dir, device="cpu")
