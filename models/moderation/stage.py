"""The nightly moderation stage: score new or changed texts, rescore everything when the version changes.

Entities: reviews (``marts.fct_reviews``: title and body) and generated product descriptions
(``marts.product_descriptions``). A text is scored when it is new, when its text changed (sha256), or when the
moderation version (``ModerationModel.version``) differs from the one that scored it: then every text is rescored.
Tables (schema ``marts``): ``moderation_scores`` (the current decision per entity), ``moderation_score_history``
(every scoring, append-only) and ``moderation_flips`` (every change of ``flagged``, either way, append-only).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd

from shopflow.models.descriptions.language_model import DEFAULT_MODEL, load_language_model
from shopflow.models.descriptions.tables import create_table, has_table, upsert_and_append
from shopflow.models.moderation.ensemble import SCORE_LABELS, ModerationModel, ShippedModelFeatures
from shopflow.models.moderation.judge import LanguageModelJudge
from shopflow.models.moderation.text_head import sentence_encoder
from shopflow.runners import shards
from shopflow.settings import Settings
from shopflow.warehouse import connect

log = logging.getLogger(__name__)

SCHEMA = "marts"
SCORES_TABLE = f"{SCHEMA}.moderation_scores"
HISTORY_TABLE = f"{SCHEMA}.moderation_score_history"
FLIPS_TABLE = f"{SCHEMA}.moderation_flips"
ENTITY_SOURCES = {  # entity type: (table it needs, query giving entity_id and text)
    "review": (
        "marts.fct_reviews",
        "select review_id as entity_id, concat_ws(chr(10), title, body) as text from marts.fct_reviews",
    ),
    "product_description": (
        "marts.product_descriptions",
        "select product_id as entity_id, description as text from marts.product_descriptions "
        "where description is not null",
    ),
}
SCORE_COLUMNS = {
    "entity_type": "varchar",
    "entity_id": "varchar",
    "text_hash": "varchar",
    **{label: "double" for label in SCORE_LABELS},
    "flagged": "boolean",
    "reasons": "varchar",  # flagged labels, comma-separated
    "rules_fired": "varchar",
    "judged": "boolean",
    "model_version": "varchar",
    "run_date": "date",
    "scored_at": "timestamp",
}
FLIP_COLUMNS = {
    "entity_type": "varchar",
    "entity_id": "varchar",
    "previous_flagged": "boolean",
    "flagged": "boolean",
    "previous_reasons": "varchar",
    "reasons": "varchar",
    "previous_model_version": "varchar",
    "model_version": "varchar",
    "run_date": "date",
    "flipped_at": "timestamp",
}


@dataclass(frozen=True)
class ModerationConfig:
    """The optional LLM judge (``from_settings``: the ``SHOPFLOW_MODERATION_*`` settings)."""

    judge_budget: int = 0  # grey-zone texts the LLM judge reads per night (0: no judge)
    judge_model: str = DEFAULT_MODEL
    device: str = "auto"
    precision: str = "auto"  # of the judge: bfloat16 where the device computes it natively, else float32
    encoder_precision: str = "auto"  # of the text head's sentence encoder

    @classmethod
    def from_settings(cls, settings: Settings) -> ModerationConfig:
        return cls(
            judge_budget=settings.moderation_judge_budget,
            judge_model=settings.moderation_judge_model,
            device=settings.device,
            precision=settings.language_model_precision,
            encoder_precision=settings.encoder_precision,
        )


@dataclass
class ModerationStageResult:
    """One night: the texts scored, the decisions that flipped, and the version that scored them."""

    run_date: date
    model_version: str
    model: dict  # ModerationModel.describe(): components, rules, calibration, judge, thresholds
    scores: pd.DataFrame  # ``SCORE_COLUMNS``, the texts scored tonight
    flips: pd.DataFrame  # ``FLIP_COLUMNS``
    full_rescore: bool
    texts: int  # all moderated texts
    seconds: float

    def model_identity(self) -> dict:
        """For the model registry: the version and what it hashes (components with package, version and weights
        sha256; rules, calibration and judge; thresholds)."""
        return {"model_version": self.model_version, **self.model}

    def summary(self) -> dict:
        flagged = self.scores["flagged"].astype(bool)
        return {
            "run_date": self.run_date.isoformat(),
            "model_identity": self.model_identity(),
            "texts": self.texts,
            "scored": len(self.scores),
            "full_rescore": self.full_rescore,
            "flagged": int(flagged.sum()),
            "flagged_by_entity": self.scores[flagged].groupby("entity_type").size().to_dict(),
            "flips": len(self.flips),
            "judged": int(self.scores["judged"].astype(bool).sum()),
            "texts_per_second": round(len(self.scores) / self.seconds, 1) if self.seconds else None,
        }


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def read_texts(con) -> pd.DataFrame:
    """entity_type, entity_id, text, text_hash of every moderated text that exists in the warehouse."""
    frames = [
        con.execute(query).df().assign(entity_type=entity)
        for entity, (table, query) in ENTITY_SOURCES.items()
        if has_table(con, table)
    ]
    texts = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["entity_id", "text"])
    texts["text"] = texts["text"].fillna("").astype(str)
    texts["text_hash"] = [text_hash(text) for text in texts["text"]]
    return texts.reindex(columns=["entity_type", "entity_id", "text", "text_hash"])


def read_current_decisions(con) -> pd.DataFrame:
    columns = ["entity_type", "entity_id", "text_hash", "flagged", "reasons", "model_version"]
    if not has_table(con, SCORES_TABLE):
        return pd.DataFrame(columns=columns)
    return con.execute(f"select {', '.join(columns)} from {SCORES_TABLE}").df()


def texts_to_score(texts: pd.DataFrame, current: pd.DataFrame, version: str) -> tuple[pd.DataFrame, bool]:
    """(the texts to score tonight, whether it is a full rescore because the version changed)."""
    if len(current) and (current["model_version"] != version).any():
        return texts, True
    known = texts.merge(current[["entity_type", "entity_id", "text_hash"]], how="left", indicator=True)
    return texts[(known["_merge"] == "left_only").to_numpy()], False


def flips_between(current: pd.DataFrame, scored: pd.DataFrame) -> pd.DataFrame:
    """Entities whose ``flagged`` decision changed from ``current`` to ``scored`` (``FLIP_COLUMNS``)."""
    previous = current.rename(
        columns={
            "flagged": "previous_flagged",
            "reasons": "previous_reasons",
            "model_version": "previous_model_version",
        }
    ).drop(columns=["text_hash"])
    joined = scored.merge(previous, on=["entity_type", "entity_id"], how="inner")
    changed = joined[joined["flagged"].astype(bool) != joined["previous_flagged"].astype(bool)]
    return changed.assign(flipped_at=changed["scored_at"]).reindex(columns=list(FLIP_COLUMNS))


def score_frame(model: ModerationModel, texts: pd.Series, judge_budget: int) -> pd.DataFrame:
    """The ensemble's scores for ``texts`` plus the model version."""
    scored = model.score(texts.tolist(), judge_budget=judge_budget)
    return scored.assign(model_version=model.version)


def build_model(config: ModerationConfig, cache_dir: Path | None) -> ModerationModel:
    """The ensemble (its sentence encoder on the configured device and precision), with the LLM judge when the judge
    budget is positive."""
    judge = None
    if config.judge_budget > 0:
        judge = LanguageModelJudge(load_language_model(config.judge_model, cache_dir, config.device, config.precision))
    features = ShippedModelFeatures(encoder=sentence_encoder(config.device, config.encoder_precision))
    return ModerationModel(judge=judge, features=features)


#: Scores each shard of texts with a judge budget per shard: one frame per shard (in-process or on workers).
ScoreShards = Callable[[list[list[str]], int], list[pd.DataFrame]]


def moderate_night(
    con_read,
    run_date: date,
    model: ModerationModel,
    judge_budget: int = 0,
    score_shards: ScoreShards | None = None,
    shard_count: int = 1,
) -> ModerationStageResult:
    """Score tonight's new/changed texts (all of them after a version change) and find the flips; writes nothing.

    ``con_read``: a DuckDB connection to the warehouse after the description stage has written its tables.
    ``score_shards`` scores ``shard_count`` shards elsewhere (the flow's Dask tasks, each running
    :func:`score_shard`), splitting the judge budget between them; by default ``model`` scores here.
    """
    began = datetime.now(UTC).replace(tzinfo=None)
    texts = read_texts(con_read)
    current = read_current_decisions(con_read)
    pending, full_rescore = texts_to_score(texts, current, model.version)
    log.info(
        "moderation %s: %d of %d texts to score (full rescore: %s)",
        model.version,
        len(pending),
        len(texts),
        full_rescore,
    )
    if score_shards is None or pending.empty:
        scored = score_frame(model, pending["text"], judge_budget)
    else:
        parts = shards(pending["text"].tolist(), shard_count)
        scored = pd.concat(score_shards(parts, judge_budget // len(parts)), ignore_index=True)
    scored = pd.concat([pending.drop(columns=["text"]).reset_index(drop=True), scored], axis=1)
    scored = scored.assign(run_date=run_date, scored_at=began).reindex(columns=list(SCORE_COLUMNS))
    return ModerationStageResult(
        run_date=run_date,
        model_version=model.version,
        model=model.describe(),
        scores=scored,
        flips=flips_between(current, scored),
        full_rescore=full_rescore,
        texts=len(texts),
        seconds=(datetime.now(UTC).replace(tzinfo=None) - began).total_seconds(),
    )


def score_shard(settings: Settings, texts: list[str], judge_budget: int) -> pd.DataFrame:
    """One shard of the night's texts scored in this process (e.g. a Dask worker) by the configured ensemble."""
    model = build_model(ModerationConfig.from_settings(settings), settings.language_model_cache_dir)
    return score_frame(model, pd.Series(texts, dtype=object), judge_budget)


def run_moderation_stage(
    settings: Settings,
    run_date: date,
    model: ModerationModel | None = None,
    score_shards: ScoreShards | None = None,
    shard_count: int = 1,
) -> ModerationStageResult:
    """The nightly stage: score reviews and descriptions (read-only), then write scores, history and flips.

    Runs after ``dbt build`` (``marts.fct_reviews``) and after the description stage (``marts.product_descriptions``).
    ``model`` replaces the configured ensemble (tests); ``score_shards``/``shard_count``: see :func:`moderate_night`.
    """
    config = ModerationConfig.from_settings(settings)
    model = model or build_model(config, settings.language_model_cache_dir)
    with connect(settings, read_only=True) as con:
        result = moderate_night(con, run_date, model, config.judge_budget, score_shards, shard_count)
    with connect(settings) as con:
        write_moderation_tables(con, result)
    return result


def write_moderation_tables(con, result: ModerationStageResult) -> None:
    """Upsert tonight's decisions, append them to the history, append the flips (one transaction)."""
    create_table(con, SCORES_TABLE, SCORE_COLUMNS, primary_key=("entity_type", "entity_id"))
    create_table(con, HISTORY_TABLE, SCORE_COLUMNS)
    create_table(con, FLIPS_TABLE, FLIP_COLUMNS)
    if len(result.scores):
        upsert_and_append(
            con,
            result.scores,
            SCORES_TABLE,
            ("entity_type", "entity_id"),
            {HISTORY_TABLE: result.scores, FLIPS_TABLE: result.flips},
        )


def moderate_file(
    input_csv: Path,
    text_column: str,
    output_csv: Path,
    settings: Settings,
    config: ModerationConfig | None = None,
    model: ModerationModel | None = None,
) -> pd.DataFrame:
    """The input CSV with every label score, ``flagged``, ``reasons``, ``rules_fired``, ``judged`` and the version."""
    config = config or ModerationConfig.from_settings(settings)
    frame = pd.read_csv(input_csv, dtype=str, keep_default_na=False)
    if text_column not in frame.columns:
        raise ValueError(f"{input_csv}: no column {text_column!r} (columns: {', '.join(frame.columns)})")
    model = model or build_model(config, settings.language_model_cache_dir)
    scored = score_frame(model, frame[text_column], config.judge_budget)
    result = pd.concat([frame, scored.add_prefix("moderation_")], axis=1)
    output_csv.parent.mkdir(parents=True, exist_ok=True)
    result.to_csv(output_csv, index=False)
    return result
