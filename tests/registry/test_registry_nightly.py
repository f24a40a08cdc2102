"""The registry over several nights of a tiny shop: gate, idempotency, lineage, the champion's mart, rollback.

One data root (warehouse + MLflow store) for the module; the ``nights`` fixture runs the first nights once and
the tests read what they left. Tests that change the champion come last, in file order, and say so.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import timedelta

import mlflow
import pandas as pd
import psutil
import pytest
from registry_shop import FIRST_DAY, LATE_USER, LATE_USER_DAY, run_night
from typer.testing import CliRunner

from shopflow.cli import app
from shopflow.registry import gate
from shopflow.registry.champion import champion_config, champion_version
from shopflow.registry.decisions import read_decisions
from shopflow.registry.gate import RecommenderConfig
from shopflow.registry.lineage import LINEAGE_TAGS, data_snapshot_id
from shopflow.registry.manage import list_versions, promote_version, rollback_champion
from shopflow.registry.nightly import log_content_model, write_champion_recommendations
from shopflow.registry.tracking import RECOMMENDER_MODEL_NAME, mlflow_client, tracking_uri
from shopflow.warehouse import connect

NIGHT_1, NIGHT_2, NIGHT_3, NIGHT_4 = (FIRST_DAY + timedelta(days=day) for day in (45, 48, 51, 54))


@pytest.fixture(scope="module")
def nights(shop_settings, minilm, random_factors) -> dict:
    """Night 1 popularity (v1, first champion); night 2 item-kNN (v2, better: promoted), run twice, and then an
    EASE re-run of night 2 (v3, a second model for a decided night); night 3 a random-factors model (v4,
    degraded: item-kNN kept and refitted as v5), run twice; night 4 item-kNN again on a failed audit (v6)."""
    decisions = {}
    _, decisions["first"] = run_night(shop_settings, NIGHT_1, ("popularity",), minilm)
    better, decisions["better"] = run_night(shop_settings, NIGHT_2, ("item_knn",), minilm)
    published = {"from_stage": published_marts(shop_settings)}  # the champion is tonight's model: stage's output
    write_champion_recommendations(shop_settings, NIGHT_2)  # the same champion, loaded from the registry
    published["from_registry"] = published_marts(shop_settings)
    _, decisions["rerun"] = run_night(shop_settings, NIGHT_2, ("item_knn",), minilm)
    _, decisions["other_model_same_night"] = run_night(shop_settings, NIGHT_2, ("ease",), minilm)
    _, decisions["degraded"] = run_night(shop_settings, NIGHT_3, (random_factors,), minilm)
    _, decisions["degraded_rerun"] = run_night(shop_settings, NIGHT_3, (random_factors,), minilm)
    _, decisions["failed_audit"] = run_night(shop_settings, NIGHT_4, ("popularity", "item_knn"), minilm, False)
    return decisions | {"better_model_version": better.model_version, "published": published}


def mart(settings, table="recommendations", key="user_id") -> pd.DataFrame:
    with connect(settings, read_only=True) as con:
        return con.execute(f"select * from marts.{table} order by {key}, rank").df()


def published_marts(settings) -> dict[str, pd.DataFrame]:
    return {"recommendations": mart(settings), "similar_products": mart(settings, "similar_products", "product_id")}


def test_tonights_champion_publishes_what_its_registered_version_would(nights) -> None:
    from_stage, from_registry = nights["published"]["from_stage"], nights["published"]["from_registry"]
    assert len(from_stage["recommendations"]) > 0 and len(from_stage["similar_products"]) > 0
    assert set(from_stage["recommendations"]["model_version"]) == {nights["better_model_version"]}
    for table, frame in from_stage.items():
        pd.testing.assert_frame_equal(frame, from_registry[table], obj=table)


def test_the_first_night_makes_a_champion_and_a_better_challenger_replaces_it(nights) -> None:
    first, better = nights["first"], nights["better"]
    assert (first.outcome, first.champion_before, first.champion_after) == (gate.FIRST_CHAMPION, None, "1")
    assert (better.outcome, better.champion_before, better.champion_after) == (gate.PROMOTED, "1", "2")
    comparison = better.comparison
    assert comparison.delta >= better.margin and comparison.delta_ci95[0] > 0
    assert comparison.delta == pytest.approx(comparison.challenger_ndcg - comparison.champion_ndcg)


def test_a_degraded_challenger_is_never_promoted_and_the_kept_champion_is_refitted(nights, shop_settings) -> None:
    degraded = nights["degraded"]
    assert degraded.outcome == gate.KEPT_REFITTED
    assert (degraded.challenger_version, degraded.champion_before, degraded.champion_after) == ("4", "2", "5")
    assert degraded.comparison.delta_ci95[1] < 0  # clearly worse than the item-kNN champion, not just a tie
    assert "gain -" in degraded.reason and f"v2 refitted on data up to {NIGHT_3} as v5" in degraded.reason
    client = mlflow_client(shop_settings)
    registered = client.get_model_version(RECOMMENDER_MODEL_NAME, degraded.challenger_version)
    assert registered.tags["recommender.family"] == "random_factors"  # registered and tagged, never champion
    assert registered.tags["gate.outcome"] == gate.KEPT_REFITTED and float(registered.tags["gate.ndcg_delta"]) < 0
    assert str(client.get_model_version_by_alias(RECOMMENDER_MODEL_NAME, "challenger").version) == "6"  # night 4

    kept, refit = (client.get_model_version(RECOMMENDER_MODEL_NAME, version) for version in ("2", "5"))
    assert RecommenderConfig.from_tags(refit.tags) == RecommenderConfig.from_tags(kept.tags)
    assert refit.tags["recommender.family"] == "item_knn"
    assert (refit.tags["refit_of"], refit.tags["champion.previous"]) == ("2", "2")
    assert refit.tags["lineage.run_date"] == NIGHT_3.isoformat() and refit.tags["gate.outcome"] == gate.KEPT_REFITTED
    assert float(refit.tags["holdout.ndcg_at_10"]) == pytest.approx(degraded.comparison.champion_ndcg, abs=1e-6)
    assert NIGHT_2 < LATE_USER_DAY <= NIGHT_3  # the refit knows a shopper its configuration's v2 never saw
    late_shopper = pd.DataFrame({"user_id": [LATE_USER]})
    kept_rows, refit_rows = (
        mlflow.pyfunc.load_model(f"models:/{RECOMMENDER_MODEL_NAME}/{version}").predict(late_shopper, params={"k": 5})
        for version in ("2", "5")
    )
    assert kept_rows.empty and len(refit_rows) == 5
    assert not set(refit_rows["product_id"]) & {"P-RED-00", "P-RED-01", "P-RED-02"}  # what they bought that day


def test_a_failed_audit_blocks_promotion_and_refitting(nights, shop_settings) -> None:
    failed = nights["failed_audit"]
    assert failed.outcome == gate.AUDIT_FAILED and failed.audit_passed is False
    assert failed.champion_after == failed.champion_before == "5"
    versions = mlflow_client(shop_settings).search_model_versions(f"name = '{RECOMMENDER_MODEL_NAME}'")
    night_4 = [str(version.version) for version in versions if version.tags["lineage.run_date"] == NIGHT_4.isoformat()]
    assert night_4 == [failed.challenger_version]  # no refit of the champion on data that failed its audit


def test_re_running_a_night_creates_neither_a_second_version_nor_a_second_champion(nights, shop_settings) -> None:
    rerun, other = nights["rerun"], nights["other_model_same_night"]
    assert (rerun.outcome, rerun.challenger_version, rerun.champion_after) == (gate.ALREADY_CHAMPION, "2", "2")
    assert other.outcome == gate.NIGHT_ALREADY_DECIDED and other.champion_after == "2"
    kept = nights["degraded_rerun"]
    assert (kept.outcome, kept.challenger_version, kept.champion_before, kept.champion_after) == (
        gate.NIGHT_ALREADY_DECIDED, "4", "5", "5"
    )  # fmt: skip
    versions = mlflow_client(shop_settings).search_model_versions(f"name = '{RECOMMENDER_MODEL_NAME}'")
    labels = [version.tags["model_version"] for version in versions]
    assert len(labels) == len(set(labels)) == 6  # popularity, item-kNN, EASE, random, item-kNN refit, night 4's
    assert labels.count(nights["better_model_version"]) == 1
    assert [str(version.version) for version in versions if "refit_of" in version.tags] == ["5"]


def test_every_version_carries_lineage_config_and_gate_tags(nights, shop_settings) -> None:
    versions = mlflow_client(shop_settings).search_model_versions(f"name = '{RECOMMENDER_MODEL_NAME}'")
    snapshot = data_snapshot_id(shop_settings)
    for version in versions:
        assert set(LINEAGE_TAGS) <= set(version.tags), version.version
        assert version.tags["lineage.data_snapshot_id"] == snapshot
        assert version.tags["lineage.dbt_invocation_id"].startswith("dbt-")
        assert version.tags["lineage.code_revision"]
        assert {"recommender.family", "recommender.params", "gate.outcome", "holdout.ndcg_at_10"} <= set(version.tags)
    night_4 = next(v for v in versions if v.tags["lineage.run_date"] == NIGHT_4.isoformat())
    assert night_4.tags["lineage.validation_passed"] == "false"


def test_the_night_run_holds_params_every_candidates_metrics_and_artifacts(nights, shop_settings) -> None:
    client = mlflow_client(shop_settings)
    night_4 = client.get_run(
        client.get_model_version(RECOMMENDER_MODEL_NAME, nights["failed_audit"].challenger_version).run_id
    )
    metrics = night_4.data.metrics
    for candidate in ("popularity", "item_knn"):
        assert 0 <= metrics[f"{candidate}.holdout.ndcg_at_10.ci_low"] <= metrics[f"{candidate}.holdout.ndcg_at_10"]
        assert f"{candidate}.validation_ndcg_at_10" in metrics
    assert night_4.data.params["candidates"] == "popularity,item_knn"
    assert night_4.data.tags["lineage.run_date"] == NIGHT_4.isoformat()
    artifacts = {item.path for item in client.list_artifacts(night_4.info.run_id)}
    assert "metrics.json" in artifacts
    assert [a.path for a in client.list_artifacts(night_4.info.run_id, "evaluation")] == ["evaluation/holdout_ndcg.png"]
    better_run = client.get_run(nights["better"].mlflow_run_id)
    assert better_run.data.metrics["gate.ndcg_delta"] == pytest.approx(nights["better"].comparison.delta)


def test_decisions_are_kept_across_nights_in_the_warehouse(nights, shop_settings) -> None:
    decisions = read_decisions(shop_settings)
    assert decisions["outcome"].tolist() == [
        gate.FIRST_CHAMPION, gate.PROMOTED, gate.ALREADY_CHAMPION, gate.NIGHT_ALREADY_DECIDED, gate.KEPT_REFITTED,
        gate.NIGHT_ALREADY_DECIDED, gate.AUDIT_FAILED,
    ]  # fmt: skip
    promoted = decisions[decisions["outcome"] == gate.PROMOTED].iloc[0]
    assert promoted["ndcg_delta"] == pytest.approx(nights["better"].comparison.delta)
    assert promoted["ndcg_delta_ci_low"] > 0 and promoted["evaluated_users"] > 0
    refitted = decisions[decisions["outcome"] == gate.KEPT_REFITTED].iloc[0]
    assert (refitted["challenger_version"], refitted["champion_before"], refitted["champion_after"]) == ("4", "2", "5")
    assert refitted["ndcg_delta_ci_high"] < 0


def test_the_mart_is_the_champions_and_a_fresh_process_loads_the_same_recommendations(nights, shop_settings) -> None:
    published = mart(shop_settings)
    champion = champion_version(mlflow_client(shop_settings))
    assert str(champion.version) == "5" and set(published["model_version"]) == {champion.tags["model_version"]}
    assert set(published["model_name"]) == {"item_knn"}
    assert LATE_USER in set(published["user_id"])  # the night-3 refit serves the shopper who arrived after night 2
    script = (
        "import json, sys, mlflow, pandas as pd\n"
        "model = mlflow.pyfunc.load_model('models:/shopflow-recommender@champion')\n"
        "users = pd.DataFrame({'user_id': json.loads(sys.stdin.read())})\n"
        "print(model.predict(users, params={'k': 20}).to_json(orient='records'))\n"
    )
    users = sorted(published["user_id"].unique())
    completed = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps(users),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env=os.environ | {"MLFLOW_TRACKING_URI": tracking_uri(shop_settings)},
    )
    loaded = pd.DataFrame(json.loads(completed.stdout.strip().splitlines()[-1]))
    expected = published[["user_id", "rank", "product_id", "score"]]
    pd.testing.assert_frame_equal(
        loaded.sort_values(["user_id", "rank"], ignore_index=True), expected, check_dtype=False
    )


def test_content_model_identity_is_tagged_on_the_nights_run(nights, shop_settings) -> None:
    identity = {
        "package": "gt-tinyllama-gguf",
        "version": "0.1.0",
        "weights_sha256": "9f2c" * 16,
        "prompt_version": "descriptions-v3",
    }
    run_id = log_content_model(shop_settings, NIGHT_4, "descriptions", identity)
    run = mlflow_client(shop_settings).get_run(run_id)
    assert run.data.tags["lineage.run_date"] == NIGHT_4.isoformat()
    assert {key: run.data.tags[f"descriptions.{key}"] for key in identity} == identity
    assert "gate.outcome" in run.data.tags  # the same run as the recommender's night
    local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="descriptions/model_identity.json",
                                                tracking_uri=tracking_uri(shop_settings))  # fmt: skip
    assert json.loads(open(local).read()) == identity


# ---------- from here on the tests move the champion
def test_rollback_restores_the_previous_champion_and_the_next_write_uses_it(nights, shop_settings) -> None:
    rolled = rollback_champion(shop_settings, "the refit looks odd in the shop")
    assert (rolled.champion_before, rolled.champion_after) == ("5", "2")  # the refit remembers the kept fit
    write_champion_recommendations(shop_settings, NIGHT_4)
    published = mart(shop_settings)
    assert set(published["model_version"]) == {nights["better_model_version"]}
    assert LATE_USER not in set(published["user_id"])  # v2 was fitted before the late shopper came
    assert rollback_champion(shop_settings).champion_after == "1"
    write_champion_recommendations(shop_settings, NIGHT_4)
    assert set(mart(shop_settings)["model_name"]) == {"popularity"}
    with pytest.raises(LookupError, match="nothing to roll back"):
        rollback_champion(shop_settings)  # v1 replaced no champion
    promoted = promote_version(shop_settings, "5", "checked: the refit is fine")
    assert (promoted.action, promoted.champion_before, promoted.champion_after) == ("manual_promote", "1", "5")
    decisions = read_decisions(shop_settings).tail(3)
    assert decisions["action"].tolist() == ["rollback", "rollback", "manual_promote"]
    assert decisions["reason"].tolist() == ["the refit looks odd in the shop", "rollback", "checked: the refit is fine"]


def test_an_alias_moved_in_the_mlflow_ui_is_honoured_the_next_night(nights, shop_settings, minilm, random_factors):
    mlflow_client(shop_settings).set_registered_model_alias(RECOMMENDER_MODEL_NAME, "champion", "1")  # as the UI does
    night_5 = NIGHT_4 + timedelta(days=1)
    moderation = {"toxicity": {"distribution": "gt-bilstm", "sha256": "ab" * 32}, "threshold_version": "t2"}
    logged_first = log_content_model(shop_settings, night_5, "moderation", moderation)  # before the recommender
    _, decision = run_night(shop_settings, night_5, (random_factors,), minilm)
    assert decision.mlflow_run_id == logged_first  # one run for the night, whichever stage logs first
    tags = mlflow_client(shop_settings).get_run(logged_first).data.tags
    assert tags["moderation.toxicity.sha256"] == "ab" * 32 and tags["moderation.threshold_version"] == "t2"
    # random factors (v7) lose to the honoured champion's popularity configuration, refitted on night 5 as v8
    assert (decision.outcome, decision.champion_before, decision.champion_after) == (gate.KEPT_REFITTED, "1", "8")
    refit = mlflow_client(shop_settings).get_model_version(RECOMMENDER_MODEL_NAME, "8")
    assert (refit.tags["recommender.family"], refit.tags["refit_of"]) == ("popularity", "1")
    outside = read_decisions(shop_settings).iloc[-2]
    assert (outside["action"], outside["champion_before"], outside["champion_after"]) == (
        "alias_changed_outside",
        "5",
        "1",
    )
    assert rollback_champion(shop_settings).champion_after == "1"  # the refit remembers the champion it refitted
    assert rollback_champion(shop_settings).champion_after == "5"  # v1 remembers the champion it displaced


def test_models_cli_lists_shows_promotes_and_rolls_back(nights, shop_settings) -> None:
    runner = CliRunner()
    env = {"SHOPFLOW_HOME": str(shop_settings.home)}
    listed = runner.invoke(app, ["models", "list"], env=env)
    assert listed.exit_code == 0, listed.output
    assert "item_knn" in listed.output and "random_factors" in listed.output
    aliases = {row["version"]: row["aliases"] for row in list_versions(shop_settings)}
    assert aliases["5"] == "champion" and aliases["7"] == "challenger" and aliases["1"] == ""
    shown = runner.invoke(app, ["models", "show", "5"], env=env)
    assert shown.exit_code == 0, shown.output
    details = json.loads(shown.output)
    assert details["aliases"] == ["champion"] and details["lineage"]["lineage.run_date"] == NIGHT_3.isoformat()
    assert details["tags"]["refit_of"] == "2"
    champion_ndcg = details["run"]["metrics"]["gate.champion_ndcg_at_10"]  # night 3's run: the champion's re-evaluation
    assert champion_ndcg > 0 and float(details["tags"]["holdout.ndcg_at_10"]) == pytest.approx(champion_ndcg, abs=1e-6)
    promoted = runner.invoke(app, ["models", "promote", "3", "--reason", "trying EASE"], env=env)
    assert promoted.exit_code == 0 and "v5 → v3" in promoted.output
    rolled = runner.invoke(app, ["models", "rollback", "--reason", "EASE was worse"], env=env)
    assert rolled.exit_code == 0 and "v3 → v5" in rolled.output
    assert read_decisions(shop_settings)["reason"].iloc[-1] == "EASE was worse"
    missing_reason = runner.invoke(app, ["models", "promote", "3"], env=env)
    assert missing_reason.exit_code != 0


def test_between_comparisons_the_night_refits_the_champion_and_refreshes_it(
    nights, shop_settings, minilm, random_factors
):
    champion = champion_config(shop_settings)
    before = champion_version(mlflow_client(shop_settings))
    night_6 = NIGHT_4 + timedelta(days=2)  # night 5 compared its candidates the day before

    result, decision = run_night(shop_settings, night_6, (random_factors,), minilm, champion=champion)

    assert result.comparison is None and result.selection.last_comparison.run_date == night_6 - timedelta(days=1)
    assert (decision.outcome, decision.champion_before) == (gate.REFRESHED, str(before.version))
    assert decision.comparison is None  # nothing was re-evaluated: same configuration, newer data
    client = mlflow_client(shop_settings)
    refreshed = client.get_model_version(RECOMMENDER_MODEL_NAME, decision.champion_after)
    assert RecommenderConfig.from_tags(refreshed.tags) == champion
    assert refreshed.tags["lineage.run_date"] == night_6.isoformat() and "holdout.ndcg_at_10" not in refreshed.tags
    night_run = client.get_run(decision.mlflow_run_id).data
    assert night_run.params["selection.mode"] == "refit" and night_run.params["candidates"] == ""
    assert set(mart(shop_settings)["model_version"]) == {refreshed.tags["model_version"]}


@pytest.mark.slow
def test_the_mlflow_ui_serves_the_registry_on_localhost_and_stops_with_shopflow(nights, shop_settings) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "shopflow.cli", "ui", "mlflow", "--port", str(port)],
        env=os.environ | {"SHOPFLOW_HOME": str(shop_settings.home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    alias_url = (
        f"http://127.0.0.1:{port}/api/2.0/mlflow/registered-models/alias?name={RECOMMENDER_MODEL_NAME}&alias=champion"
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(alias_url, timeout=5) as response:
                    served = json.load(response)["model_version"]
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "the MLflow UI did not come up"
                time.sleep(2)
        assert served["version"] == str(champion_version(mlflow_client(shop_settings)).version)
        listening = {c.laddr.ip for c in psutil.net_connections("tcp") if c.laddr.port == port and c.status == "LISTEN"}
        assert listening == {"127.0.0.1"}
    finally:
        server.terminate()
        server.wait(timeout=90)
    with pytest.raises(OSError):
        urllib.request.urlopen(alias_url, timeout=5)
