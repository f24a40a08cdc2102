"""Product descriptions from structured data by a small offline language model, guarded, incremental.

Nightly: ``run_description_stage(settings, run_date)`` (before moderation); ad hoc: ``describe_file``.
"""

from shopflow.models.descriptions.guard import GuardLimits, GuardOutcome, check_description, guard_descriptions
from shopflow.models.descriptions.language_model import (
    DEFAULT_MODEL,
    FAST_MODEL,
    SHIPPED_MODELS,
    LanguageModel,
    load_language_model,
    model_identity,
)
from shopflow.models.descriptions.prompts import PROMPT_VERSION, ProductFacts
from shopflow.models.descriptions.provenance import ProvenanceError, WeightsIdentity
from shopflow.models.descriptions.stage import (
    DescriptionConfig,
    DescriptionInputs,
    DescriptionStageResult,
    describe_file,
    describe_night,
    generate_descriptions,
    plan_generation,
    read_description_inputs,
    run_description_stage,
    write_description_tables,
)
from shopflow.models.descriptions.template import template_description

__all__ = [
    "DEFAULT_MODEL",
    "FAST_MODEL",
    "PROMPT_VERSION",
    "SHIPPED_MODELS",
    "DescriptionConfig",
    "DescriptionInputs",
    "DescriptionStageResult",
    "GuardLimits",
    "GuardOutcome",
    "LanguageModel",
    "ProductFacts",
    "ProvenanceError",
    "WeightsIdentity",
    "check_description",
    "describe_file",
    "describe_night",
    "generate_descriptions",
    "guard_descriptions",
    "load_language_model",
    "model_identity",
    "plan_generation",
    "read_description_inputs",
    "run_description_stage",
    "template_description",
    "write_description_tables",
]
