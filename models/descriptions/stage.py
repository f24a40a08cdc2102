"""The nightly description stage: which products need a description, generating them under a budget, the tables.

Incremental by key: ``generation_key = sha256(input_hash + prompt version + model id)``; a product is generated when
it has no description yet (new) or its current key differs (changed input, prompt or model). Tonight's budget goes
to new products first, then to the most viewed (``view`` clicks in the last ``view_window_days``); the rest waits
for the next night and keeps its previous description meanwhile. A re-run of a finished night generates nothing.

Each product gets one greedy attempt; a text the guard rejects gets one stricter retry without the unsafe
fields; after that, the deterministic template (``source = template``). Tables (schema ``marts``):
``product_descriptions`` (the current description per product) and ``product_description_history`` (every
generation ever written, append-only).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Protocol

import pandas as pd

from shopflow.models.descriptions.guard import GuardLimits, GuardOutcome, Moderator, guard_descriptions, unsafe_fields
from shopflow.models.descriptions.language_model import (
    DEFAULT_MODEL,
    Conversation,
    GenerationStats,
    load_language_model,
    model_identity,
)
from shopflow.models.descriptions.prompts import (
    PROMPT_VERSION,
    ProductFacts,
    description_conversation,
    format_price,
    parse_attributes,
    strict_conversation,
)
from shopflow.models.descriptions.provenance import WeightsIdentity
from shopflow.models.descriptions.tables import create_table, has_table, upsert_and_append
from shopflow.models.descriptions.template import template_description
from shopflow.runners import shards
from shopflow.settings import Settings
from shopflow.warehouse import connect

log = logging.getLogger(__name__)

SCHEMA = "marts"
CURRENT_TABLE = f"{SCHEMA}.product_descriptions"
HISTORY_TABLE = f"{SCHEMA}.product_description_history"
COLUMNS = {
    "product_id": "varchar",
    "description": "varchar",  # null only when even the template failed the guard (nothing is published)
    "source": "varchar",  # llm | template
    "model_id": "varchar",
    "prompt_version": "varchar",
    "input_hash": "varchar",
    "generation_key": "varchar",
    "guard_passed": "boolean",
    "guard_outcome": "varchar",  # "passed" or "failed: <reasons>" for the published text
    "rejected_attempts": "varchar",  # why the LLM attempts before it were rejected ("" when the first passed)
    "attempts": "integer",  # LLM attempts made (1 or 2)
    "run_date": "date",
    "generated_at": "timestamp",
}


class TextGenerator(Protocol):
    """What the stage needs from a language model (``LanguageModel`` or a test double)."""

    identity: WeightsIdentity
    stats: GenerationStats

    def generate(
        self, conversations: Sequence[Conversation], max_new_tokens: int = 80, batch_size: int = 8
    ) -> list[str]: ...


@dataclass(frozen=True)
class DescriptionConfig:
    """How the stage generates (``from_settings``: the ``SHOPFLOW_DESCRIPTION_*`` settings)."""

    model: str = DEFAULT_MODEL  # shipped model name or local Hugging Face folder
    budget: int = 100  # products generated per night (about 4-5 s each for Qwen on 2 CPU cores)
    batch_size: int = 16
    max_new_tokens: int = 80
    device: str = "auto"  # SHOPFLOW_DEVICE: auto (CUDA when available), cpu or cuda
    precision: str = "auto"  # SHOPFLOW_LANGUAGE_MODEL_PRECISION: auto (bfloat16 where native), float32, bfloat16
    view_window_days: int = 30  # "most viewed" counts views this many days back from the run date
    limits: GuardLimits = field(default_factory=GuardLimits)

    @classmethod
    def from_settings(cls, settings: Settings) -> DescriptionConfig:
        return cls(
            model=settings.description_model,
            budget=settings.description_budget,
            batch_size=settings.description_batch_size,
            device=settings.device,
            precision=settings.language_model_precision,
        )


@dataclass
class DescriptionStageResult:
    """One night of the stage: what was generated, what is up to date, what waits, and by which model."""

    run_date: date
    model: WeightsIdentity
    prompt_version: str
    descriptions: pd.DataFrame  # this night's generations, ``COLUMNS``
    products: int  # in the catalogue
    up_to_date: int  # current key already described
    waiting: int  # needing a description, over tonight's budget
    generation: GenerationStats | None = None

    def model_identity(self) -> dict[str, str]:
        """What generated tonight's texts, for the model registry: package, version, weights hash, prompt version."""
        return {
            "model_id": self.model.model_id,
            "package": self.model.distribution,
            "version": self.model.version,
            "weights_sha256": self.model.sha256,
            "prompt_version": self.prompt_version,
        }

    def summary(self) -> dict:
        """Counts, provenance and speed, for the stage log line and the model registry."""
        sources = self.descriptions["source"].value_counts().to_dict() if len(self.descriptions) else {}
        stats = self.generation
        return {
            "run_date": self.run_date.isoformat(),
            "model_identity": self.model_identity(),
            "products": self.products,
            "generated": len(self.descriptions),
            "llm": int(sources.get("llm", 0)),
            "template": int(sources.get("template", 0)),
            "guard_failed": int((~self.descriptions["guard_passed"].astype(bool)).sum()),
            "up_to_date": self.up_to_date,
            "waiting": self.waiting,
            "generated_tokens_per_second": round(stats.generated_tokens_per_second, 2) if stats else None,
            "texts_per_second": round(stats.sequences_per_second, 3) if stats else None,
        }


def generation_key(input_hash: str, prompt_version: str, model_id: str) -> str:
    return hashlib.sha256(f"{input_hash}\n{prompt_version}\n{model_id}".encode()).hexdigest()


def facts_from_frame(products: pd.DataFrame) -> list[ProductFacts]:
    """ProductFacts per row of a products-contract frame (dim_products or a CSV); missing optionals are None."""

    def text(value: object) -> str | None:
        return None if value is None or pd.isna(value) or str(value).strip() == "" else str(value).strip()

    return [
        ProductFacts(
            product_id=str(row["product_id"]),
            title=text(row["title"]) or "",
            category=text(row.get("category")),
            brand=text(row.get("brand")),
            price=format_price(text(row.get("price"))),
            currency=text(row.get("currency")),
            attributes=parse_attributes(text(row.get("attributes"))),
        )
        for row in products.to_dict("records")
    ]


def generate_descriptions(
    products: Sequence[ProductFacts],
    generator: TextGenerator,
    moderator: Moderator | None,
    config: DescriptionConfig,
    run_date: date,
) -> pd.DataFrame:
    """Generate, guard, retry once, fall back to the template: one row per product with ``COLUMNS``."""
    model_id, generated_at = generator.identity.model_id, datetime.now(UTC).replace(tzinfo=None)

    def attempt(indices: list[int], conversation_of) -> dict[int, tuple[str, GuardOutcome]]:
        """Generate for ``products[indices]`` and guard the texts: {index: (text, outcome)}."""
        chosen = [products[i] for i in indices]
        texts = generator.generate([conversation_of(f) for f in chosen], config.max_new_tokens, config.batch_size)
        outcomes = guard_descriptions(chosen, texts, moderator, config.limits)
        return dict(zip(indices, zip(texts, outcomes, strict=True), strict=True))

    def retry_conversation(facts: ProductFacts) -> Conversation:
        return strict_conversation(facts, frozenset(unsafe_fields(facts)))

    results = attempt(list(range(len(products))), description_conversation)
    rejected = {i: f"llm: {outcome.summary()}" for i, (_, outcome) in results.items() if not outcome.passed}
    if rejected:
        results |= attempt(list(rejected), retry_conversation)
        for i in rejected:
            if not results[i][1].passed:
                rejected[i] += f" | retry: {results[i][1].summary()}"
    failed = [i for i, (_, outcome) in results.items() if not outcome.passed]
    templates = [template_description(products[i]) for i in failed]
    # the template is as long as the product's data allows: only the upper length bound applies to it
    template_limits = replace(config.limits, min_chars=0)
    template_outcomes = guard_descriptions([products[i] for i in failed], templates, moderator, template_limits)
    fallback = dict(zip(failed, zip(templates, template_outcomes, strict=True), strict=True))

    rows = []
    for i, facts in enumerate(products):
        text, outcome = fallback.get(i, results[i])
        source = "template" if i in fallback else "llm"
        rows.append(
            {
                "product_id": facts.product_id,
                "description": text if outcome.passed else None,
                "source": source,
                "model_id": model_id,
                "prompt_version": PROMPT_VERSION,
                "input_hash": facts.input_hash(),
                "generation_key": generation_key(facts.input_hash(), PROMPT_VERSION, model_id),
                "guard_passed": outcome.passed,
                "guard_outcome": outcome.summary(),
                "rejected_attempts": rejected.get(i, ""),
                "attempts": 1 if i not in rejected else 2,
                "run_date": run_date,
                "generated_at": generated_at,
            }
        )
    return pd.DataFrame(rows, columns=list(COLUMNS))


# ---------------------------------------------------------------- planning (pure)


def plan_generation(
    products: pd.DataFrame, previous_keys: pd.DataFrame, views: pd.DataFrame, model_id: str, budget: int
) -> tuple[pd.DataFrame, int, int]:
    """(products to generate tonight in priority order, how many are up to date, how many wait).

    ``products``: dim_products rows; ``previous_keys``: product_id, generation_key of current descriptions;
    ``views``: product_id, views. New products come first, then changed ones; each group by views, then id.
    """
    facts = facts_from_frame(products)
    keyed = products.assign(generation_key=[generation_key(f.input_hash(), PROMPT_VERSION, model_id) for f in facts])
    keyed = keyed.merge(
        previous_keys.rename(columns={"generation_key": "previous_key"}), on="product_id", how="left"
    ).merge(views, on="product_id", how="left")
    keyed["views"] = keyed["views"].fillna(0)
    stale = keyed[keyed["generation_key"] != keyed["previous_key"]].copy()
    stale["is_new"] = stale["previous_key"].isna()
    stale = stale.sort_values(["is_new", "views", "product_id"], ascending=[False, False, True], kind="stable")
    selected = stale.head(max(budget, 0))
    return selected[list(products.columns)], len(keyed) - len(stale), len(stale) - len(selected)


# ---------------------------------------------------------------- reading inputs


@dataclass(frozen=True)
class DescriptionInputs:
    """What planning reads from the warehouse: the catalogue, the current keys and the recent views."""

    products: pd.DataFrame  # marts.dim_products: product_id, title, category, brand, price, currency, attributes
    previous_keys: pd.DataFrame  # product_id, generation_key of the current descriptions
    views: pd.DataFrame  # product_id, views in the window
    generated_tonight: int = 0  # generations already recorded for this run date (a re-run spends no new budget)


def read_description_inputs(con, run_date: date, view_window_days: int) -> DescriptionInputs:
    """The catalogue, current generation keys and views up to ``run_date`` from a warehouse connection."""
    products = con.execute(
        "select product_id, title, category, brand, price::varchar as price, currency, attributes "
        "from marts.dim_products order by product_id"
    ).df()
    previous_keys = pd.DataFrame({"product_id": pd.Series(dtype=str), "generation_key": pd.Series(dtype=str)})
    if has_table(con, CURRENT_TABLE):
        previous_keys = con.execute(f"select product_id, generation_key from {CURRENT_TABLE}").df()
    views = pd.DataFrame({"product_id": pd.Series(dtype=str), "views": pd.Series(dtype="int64")})
    if has_table(con, "marts.fct_clicks"):
        views = con.execute(
            "select product_id, count(*) as views from marts.fct_clicks where event_type = 'view' "
            "and event_date between ?::date - ?::integer + 1 and ?::date group by product_id",
            [run_date, view_window_days, run_date],
        ).df()
    generated_tonight = 0
    if has_table(con, HISTORY_TABLE):
        generated_tonight = con.execute(
            f"select count(*) from {HISTORY_TABLE} where run_date = ?", [run_date]
        ).fetchone()[0]
    return DescriptionInputs(products, previous_keys, views, generated_tonight)


# ---------------------------------------------------------------- the stage


def default_moderator() -> Moderator:
    """The moderation ensemble (no judge) as the guard's moderator."""
    from shopflow.models.moderation.ensemble import ModerationModel

    return ModerationModel().flag_reasons


#: Generates the descriptions of each shard of products: ``[(rows, stats) per shard]`` (in-process or on workers).
GenerateShards = Callable[[list[list[ProductFacts]]], list[tuple[pd.DataFrame, GenerationStats]]]


def describe_night(
    inputs: DescriptionInputs,
    run_date: date,
    config: DescriptionConfig,
    cache_dir: Path | None = None,
    generator: TextGenerator | None = None,
    moderator: Moderator | None = None,
    generate_shards: GenerateShards | None = None,
    shard_count: int = 1,
) -> DescriptionStageResult:
    """Plan tonight's generations and generate them; nothing is written.

    By default the model (and the moderator) load in this process, only when something needs generating;
    ``generator``/``moderator`` replace the configured ones. ``generate_shards`` instead hands ``shard_count``
    shards of products to other processes (the flow's Dask tasks, each running :func:`generate_shard`).
    ``cache_dir`` holds the dequantised copies of shipped models.
    """
    identity = generator.identity if generator else model_identity(config.model)
    budget_left = max(config.budget - inputs.generated_tonight, 0)  # the budget is per night, re-runs included
    selected, up_to_date, waiting = plan_generation(
        inputs.products, inputs.previous_keys, inputs.views, identity.model_id, budget_left
    )
    log.info("descriptions: %d to generate, %d up to date, %d waiting", len(selected), up_to_date, waiting)
    descriptions, stats = pd.DataFrame(columns=list(COLUMNS)), None
    if len(selected):
        facts = facts_from_frame(selected)
        if generate_shards is None:
            generator = generator or load_language_model(config.model, cache_dir, config.device, config.precision)
            rows = generate_descriptions(facts, generator, moderator or default_moderator(), config, run_date)
            outputs = [(rows, generator.stats)]
        else:
            outputs = generate_shards(shards(facts, shard_count))
        descriptions = pd.concat([rows for rows, _ in outputs], ignore_index=True)
        stats = GenerationStats(
            sequences=sum(shard.sequences for _, shard in outputs),
            prompt_tokens=sum(shard.prompt_tokens for _, shard in outputs),
            generated_tokens=sum(shard.generated_tokens for _, shard in outputs),
            seconds=max(shard.seconds for _, shard in outputs),  # shards generate side by side
        )
    return DescriptionStageResult(
        run_date=run_date,
        model=identity,
        prompt_version=PROMPT_VERSION,
        descriptions=descriptions,
        products=len(inputs.products),
        up_to_date=up_to_date,
        waiting=waiting,
        generation=stats,
    )


def generate_shard(
    settings: Settings, facts: list[ProductFacts], run_date: date
) -> tuple[pd.DataFrame, GenerationStats]:
    """One shard of the night's generations, in this process (e.g. a Dask worker): load, generate, guard."""
    config = DescriptionConfig.from_settings(settings)
    generator = load_language_model(config.model, settings.language_model_cache_dir, config.device, config.precision)
    return generate_descriptions(facts, generator, default_moderator(), config, run_date), generator.stats


def run_description_stage(
    settings: Settings,
    run_date: date,
    generator: TextGenerator | None = None,
    moderator: Moderator | None = None,
    generate_shards: GenerateShards | None = None,
    shard_count: int = 1,
) -> DescriptionStageResult:
    """The nightly stage: read the warehouse (read-only), generate within the budget, write the two tables.

    Runs after ``dbt build`` (needs ``marts.dim_products``; uses ``marts.fct_clicks`` for priority) and before the
    moderation stage, which scores the descriptions written here. ``generate_shards``/``shard_count``: see
    :func:`describe_night`.
    """
    config = DescriptionConfig.from_settings(settings)
    with connect(settings, read_only=True) as con:
        inputs = read_description_inputs(con, run_date, config.view_window_days)
    result = describe_night(
        inputs, run_date, config, settings.language_model_cache_dir, generator, moderator, generate_shards, shard_count
    )
    with connect(settings) as con:
        write_description_tables(con, result)
    return result


def write_description_tables(con, result: DescriptionStageResult) -> None:
    """Append tonight's generations to the history and make them the current descriptions (one transaction)."""
    create_table(con, CURRENT_TABLE, COLUMNS, primary_key=("product_id",))
    create_table(con, HISTORY_TABLE, COLUMNS)
    if len(result.descriptions):
        tonight = result.descriptions[list(COLUMNS)]
        upsert_and_append(con, tonight, CURRENT_TABLE, ("product_id",), {HISTORY_TABLE: tonight})


def describe_file(
    input_csv: Path,
    output_csv: Path,
    settings: Settings,
    config: DescriptionConfig | None = None,
    generator: TextGenerator | None = None,
    moderator: Moderator | None = None,
) -> pd.DataFrame:
    """Describe every product of a products-contract CSV (no budget, no incremental keys) into ``output_csv``."""
    config = config or DescriptionConfig.from_settings(settings)
    products = pd.read_csv(input_csv, dtype=str, keep_default_na=False)
    products.columns = [column.strip().lower() for column in products.columns]
    missing = {"product_id", "title"} - set(products.columns)
    if missing:
        raise ValueError(f"{input_csv}: missing required column(s) {', '.join(sorted(missing))}")
    generator = generator or load_language_model(
        config.model, settings.language_model_cache_dir, config.device, config.precision
    )
    described = generate_descriptions(
        facts_from_frame(products), generator, moderator or default_moderator(), config, date.today()
    )
    output_csv.parent.mkdir(parents=True, exist_ok=True)
    described.drop(columns=["run_date"]).to_csv(output_csv, index=False)
    return described
