"""Moderation of reviews and descriptions: shipped toxicity models + rules (+ an optional LLM judge), versioned.

Nightly: ``run_moderation_stage(settings, run_date)`` (after the description stage); ad hoc: ``moderate_file``.
"""

from shopflow.models.moderation.ensemble import SCORE_LABELS, ModerationModel
from shopflow.models.moderation.stage import (
    ModerationConfig,
    ModerationStageResult,
    moderate_file,
    moderate_night,
    run_moderation_stage,
    write_moderation_tables,
)

__all__ = [
    "SCORE_LABELS",
    "ModerationConfig",
    "ModerationModel",
    "ModerationStageResult",
    "moderate_file",
    "moderate_night",
    "run_moderation_stage",
    "write_moderation_tables",
]
