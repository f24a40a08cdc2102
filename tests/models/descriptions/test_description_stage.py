"""The nightly stage: incremental keys, budget and priority, tables and history, re-runs that generate nothing."""

from __future__ import annotations

import json
from datetime import date, timedelta

import duckdb
import pandas as pd
import pytest

from shopflow.models.descriptions.prompts import PROMPT_VERSION
from shopflow.models.descriptions.stage import (
    CURRENT_TABLE,
    HISTORY_TABLE,
    DescriptionConfig,
    describe_night,
    facts_from_frame,
    generation_key,
    plan_generation,
    read_description_inputs,
    run_description_stage,
    write_description_tables,
)

NIGHT = date(2024, 5, 1)


def product(product_id: str, title: str, size: int) -> dict:
    return {
        "product_id": product_id,
        "title": f"{title} {size} cm",
        "category": "kitchen",
        "brand": "Acme",
        "price": "19.900",
        "currency": "EUR",
        "attributes": json.dumps({"color": "oak", "length_cm": size}),
        "description": None,
    }


@pytest.fixture
def warehouse():
    """An in-memory warehouse with marts.dim_products (4 products) and views for P2 > P3 > P1."""
    con = duckdb.connect()
    con.execute("create schema marts")
    products = pd.DataFrame(
        [product(f"P{i}", name, 10 * i) for i, name in enumerate(["Knife", "Pan", "Board", "Bowl"], 1)]
    )
    con.register("products_frame", products)
    con.execute("create table marts.dim_products as select * from products_frame")
    views = [("P2", "view")] * 3 + [("P3", "view")] * 2 + [("P1", "view"), ("P1", "purchase"), ("P1", "purchase")]
    clicks = pd.DataFrame(views, columns=["product_id", "event_type"]).assign(event_date=NIGHT)
    con.register("clicks_frame", clicks)
    con.execute("create table marts.fct_clicks as select * from clicks_frame")
    yield con
    con.close()


def echo_title(conversation: list[dict]) -> str:
    """A faithful 'model': repeats the product's title line from the prompt."""
    title = next(line for line in conversation[-1]["content"].splitlines() if line.startswith("Title: "))
    return f"The {title.removeprefix('Title: ')} is made of oak and comes from the brand Acme."


def run_night(con, generator, budget: int, night: date = NIGHT):
    config = DescriptionConfig(budget=budget)
    inputs = read_description_inputs(con, night, config.view_window_days)
    result = describe_night(inputs, night, config, generator=generator, moderator=lambda t: [""] * len(t))
    write_description_tables(con, result)
    return result


def test_the_key_changes_with_input_prompt_and_model():
    key = generation_key("input", "v1", "model-a")
    assert key != generation_key("input2", "v1", "model-a")
    assert key != generation_key("input", "v2", "model-a")
    assert key != generation_key("input", "v1", "model-b")


def test_input_hash_ignores_the_product_id_and_attribute_order():
    first = facts_from_frame(pd.DataFrame([{"product_id": "A", "title": "T", "attributes": '{"a": 1, "b": 2}'}]))[0]
    second = facts_from_frame(pd.DataFrame([{"product_id": "B", "title": "T", "attributes": '{"b": 2, "a": 1}'}]))[0]
    assert first.input_hash() == second.input_hash()


def test_plan_puts_new_products_first_then_most_viewed(warehouse):
    products = warehouse.execute("select * from marts.dim_products").df()
    facts = {f.product_id: f for f in facts_from_frame(products)}
    previous = pd.DataFrame(
        {
            "product_id": ["P1", "P2", "P3"],
            "generation_key": [
                generation_key(facts["P1"].input_hash(), PROMPT_VERSION, "m"),  # up to date
                "stale-key",  # changed
                "stale-key",  # changed
            ],
        }
    )
    views = pd.DataFrame({"product_id": ["P2", "P3"], "views": [3, 5]})
    selected, up_to_date, waiting = plan_generation(products, previous, views, "m", budget=2)
    assert list(selected["product_id"]) == ["P4", "P3"]  # P4 is new; then P3 (5 views) before P2 (3 views)
    assert (up_to_date, waiting) == (1, 1)


def test_budget_spreads_over_nights_and_a_finished_night_regenerates_nothing(warehouse, scripted_generator):
    generator = scripted_generator(echo_title)
    first = run_night(warehouse, generator, budget=3)
    assert list(first.descriptions["product_id"]) == ["P2", "P3", "P1"]  # all new: most viewed first
    assert (first.up_to_date, first.waiting) == (0, 1)
    assert set(first.descriptions["source"]) == {"llm"}

    first_again = run_night(warehouse, generator, budget=3)  # the night's budget is spent, re-runs included
    assert len(first_again.descriptions) == 0 and (first_again.up_to_date, first_again.waiting) == (3, 1)
    next_night = NIGHT + timedelta(days=1)
    second = run_night(warehouse, generator, budget=3, night=next_night)
    assert list(second.descriptions["product_id"]) == ["P4"]
    rerun = run_night(warehouse, generator, budget=3, night=next_night)
    assert len(rerun.descriptions) == 0 and rerun.up_to_date == 4
    assert generator.stats.sequences == 4  # nothing was generated twice

    current = warehouse.execute(f"select product_id, source, guard_passed from {CURRENT_TABLE} order by 1").fetchall()
    assert current == [(f"P{i}", "llm", True) for i in range(1, 5)]
    assert warehouse.execute(f"select count(*) from {HISTORY_TABLE}").fetchone()[0] == 4


def test_a_changed_product_or_model_is_regenerated_and_history_is_kept(warehouse, scripted_generator):
    run_night(warehouse, scripted_generator(echo_title), budget=10)
    warehouse.execute("update marts.dim_products set price = 24.5 where product_id = 'P3'")
    changed = run_night(warehouse, scripted_generator(echo_title), budget=10, night=date(2024, 5, 2))
    assert list(changed.descriptions["product_id"]) == ["P3"]

    new_model = run_night(warehouse, scripted_generator(echo_title, name="other-model"), budget=10)
    assert len(new_model.descriptions) == 4
    history = warehouse.execute(f"select product_id, count(*) from {HISTORY_TABLE} group by 1 order by 1").fetchall()
    assert history == [("P1", 2), ("P2", 2), ("P3", 3), ("P4", 2)]
    assert warehouse.execute(f"select count(distinct model_id) from {CURRENT_TABLE}").fetchone()[0] == 1


def test_stage_summary_reports_model_identity_and_counts(warehouse, scripted_generator):
    result = run_night(warehouse, scripted_generator(echo_title), budget=2)
    summary = result.summary()
    assert summary["model_identity"] == {
        "model_id": "scripted@sha256:000000000000",
        "package": "test",
        "version": "0",
        "weights_sha256": "0" * 64,
        "prompt_version": PROMPT_VERSION,
    }
    assert (summary["generated"], summary["llm"], summary["template"], summary["waiting"]) == (2, 2, 0, 2)


def test_the_nightly_entry_reads_and_writes_the_warehouse_file(settings, scripted_generator):
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute("create schema marts")
        con.register("products_frame", pd.DataFrame([product("P1", "Knife", 20), product("P2", "Pan", 30)]))
        con.execute("create table marts.dim_products as select * from products_frame")
    generator = scripted_generator(echo_title)
    first = run_description_stage(settings, NIGHT, generator=generator, moderator=lambda t: [""] * len(t))
    assert len(first.descriptions) == 2  # no fct_clicks yet: views count as 0
    again = run_description_stage(settings, NIGHT, generator=generator, moderator=lambda t: [""] * len(t))
    assert len(again.descriptions) == 0 and again.generation is None
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        assert con.execute(f"select count(*) from {CURRENT_TABLE}").fetchone()[0] == 2
