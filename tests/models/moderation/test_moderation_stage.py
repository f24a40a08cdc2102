"""The nightly moderation stage: incremental scoring, full rescore on a new version, flips, tables, files."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import duckdb
import pandas as pd
import pytest

from shopflow.models.moderation.calibration import load_calibration
from shopflow.models.moderation.ensemble import SCORE_LABELS, ModerationModel
from shopflow.models.moderation.stage import (
    FLIPS_TABLE,
    HISTORY_TABLE,
    SCORES_TABLE,
    moderate_file,
    moderate_night,
    run_moderation_stage,
    write_moderation_tables,
)

NIGHT = date(2024, 5, 1)
REVIEWS = [
    ("R1", "Great kettle", "Boils water fast, the auto shut-off works perfectly."),
    ("R2", "Disappointed", "The lamp arrived scratched. Would not recommend."),
    ("R3", "You idiots", "This is garbage and you are a bunch of morons."),
]


@pytest.fixture
def warehouse():
    con = duckdb.connect()
    con.execute("create schema marts")
    con.execute("create table marts.fct_reviews (review_id varchar, title varchar, body varchar)")
    con.executemany("insert into marts.fct_reviews values (?, ?, ?)", REVIEWS)
    con.execute("create table marts.product_descriptions (product_id varchar, description varchar)")
    con.execute("insert into marts.product_descriptions values ('P1', 'An oak chef knife, 33 cm long.'), ('P2', null)")
    yield con
    con.close()


def night(con, model, run_date=NIGHT):
    result = moderate_night(con, run_date, model)
    write_moderation_tables(con, result)
    return result


def test_first_night_scores_every_text_and_a_rerun_scores_nothing(warehouse, moderation_model):
    first = night(warehouse, moderation_model)
    assert first.texts == 4 and len(first.scores) == 4  # 3 reviews + 1 published description
    current = warehouse.execute(f"select entity_type, entity_id, flagged from {SCORES_TABLE} order by 1, 2").fetchall()
    assert current == [
        ("product_description", "P1", False),
        ("review", "R1", False),
        ("review", "R2", False),
        ("review", "R3", True),
    ]
    rerun = night(warehouse, moderation_model)
    assert len(rerun.scores) == 0 and not rerun.full_rescore
    assert warehouse.execute(f"select count(*) from {HISTORY_TABLE}").fetchone()[0] == 4


def test_a_changed_text_is_rescored_and_its_flips_are_recorded_both_ways(warehouse, moderation_model):
    night(warehouse, moderation_model)
    warehouse.execute(
        "update marts.fct_reviews set body = 'Use code SAVE50 at www.cheap-deals.biz' where review_id = 'R2'"
    )
    warehouse.execute(
        "update marts.fct_reviews set title = 'Sorry', body = 'It works fine now.' where review_id = 'R3'"
    )
    second = night(warehouse, moderation_model, date(2024, 5, 2))
    assert sorted(second.scores["entity_id"]) == ["R2", "R3"]
    flips = warehouse.execute(
        f"select entity_id, previous_flagged, flagged, reasons, run_date from {FLIPS_TABLE} order by 1"
    ).fetchall()
    assert [row[:3] for row in flips] == [("R2", False, True), ("R3", True, False)]
    assert "spam" in flips[0][3] and flips[0][4] == date(2024, 5, 2)


def test_a_new_version_rescores_everything(warehouse, moderation_model, shipped_features):
    night(warehouse, moderation_model)
    calibration = load_calibration()
    stricter = ModerationModel(
        calibration=replace(calibration, thresholds={**calibration.thresholds, "toxic": 0.999999}),
        features=shipped_features,
    )
    rescored = night(warehouse, stricter)
    assert rescored.full_rescore and len(rescored.scores) == 4
    versions = warehouse.execute(f"select distinct model_version from {SCORES_TABLE}").fetchall()
    assert versions == [(stricter.version,)]
    identity = rescored.summary()["model_identity"]
    assert identity["model_version"] == stricter.version and identity["thresholds"]["toxic"] == 0.999999


def test_moderate_file_appends_scores_to_any_csv(tmp_path, settings, moderation_model):
    source = tmp_path / "texts.csv"
    pd.DataFrame({"id": [1, 2], "body": ["Lovely tea, will buy again.", "Call +49 151 2345 6789 now!!!"]}).to_csv(
        source, index=False
    )
    out = tmp_path / "scored.csv"
    moderate_file(source, "body", out, settings, model=moderation_model)
    scored = pd.read_csv(out, keep_default_na=False)
    assert list(scored["moderation_flagged"]) == [False, True]
    assert {f"moderation_{label}" for label in SCORE_LABELS} <= set(scored.columns)
    assert set(scored["moderation_model_version"]) == {moderation_model.version}
    with pytest.raises(ValueError, match="no column 'text'"):
        moderate_file(source, "text", out, settings, model=moderation_model)


def test_the_nightly_entry_reads_and_writes_the_warehouse_file(settings, moderation_model):
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute("create schema marts")
        con.execute("create table marts.fct_reviews (review_id varchar, title varchar, body varchar)")
        con.executemany("insert into marts.fct_reviews values (?, ?, ?)", REVIEWS)
    result = run_moderation_stage(settings, NIGHT, model=moderation_model)
    assert result.texts == 3 and result.summary()["flagged"] == 1  # no descriptions table yet: reviews only
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        assert con.execute(f"select count(*) from {SCORES_TABLE}").fetchone()[0] == 3
        assert con.execute(f"select count(*) from {FLIPS_TABLE}").fetchone()[0] == 0
