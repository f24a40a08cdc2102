"""Model-version retention: which versions are kept, and a real prune of a registry three nights old.

The module's registry is shared: the dry run comes first, the test that deletes comes last."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

import pytest
from mlflow.exceptions import MlflowException
from registry_shop import FIRST_DAY, run_night
from typer.testing import CliRunner

from shopflow.cli import app
from shopflow.registry import gate
from shopflow.registry.manage import promote_version, rollback_champion
from shopflow.registry.nightly import write_champion_recommendations
from shopflow.registry.retention import logged_model_id, prune_model_versions, retained_versions
from shopflow.registry.tracking import RECOMMENDER_MODEL_NAME, mlflow_client, recommender_versions

NIGHT_1, NIGHT_2, NIGHT_3 = (FIRST_DAY + timedelta(days=day) for day in (45, 48, 51))

# ten versions; the champion v9 replaced v7, which replaced v4, which replaced v2, which replaced v1
PREVIOUS_CHAMPION = {"1": None, "2": "1", "3": None, "4": "2", "5": None, "6": None, "7": "4", "8": None,
                     "9": "7", "10": None}  # fmt: skip


def test_kept_are_the_newest_the_aliased_and_the_champions_rollback_history() -> None:
    kept = retained_versions(PREVIOUS_CHAMPION, {"9", "10", "3"}, "9", keep_latest=2, rollback_depth=2)
    assert kept == {"10", "9", "3", "7", "4"}  # newest 10 and 9; aliased 3; v9's last two predecessors


def test_no_rollback_depth_keeps_only_the_newest_and_the_aliased() -> None:
    assert retained_versions(PREVIOUS_CHAMPION, {"9"}, "9", keep_latest=1, rollback_depth=0) == {"10", "9"}


def test_the_rollback_history_stops_at_a_version_already_deleted() -> None:
    pruned_before = {number: previous for number, previous in PREVIOUS_CHAMPION.items() if number != "4"}
    assert retained_versions(pruned_before, {"9"}, "9", keep_latest=1, rollback_depth=5) == {"10", "9", "7"}


def test_without_a_champion_the_newest_are_kept() -> None:
    assert retained_versions({"1": None, "2": None, "3": None}, set(), None, keep_latest=2, rollback_depth=3) == {
        "2",
        "3",
    }


@pytest.fixture(scope="module")
def registry_three_nights_old(shop_settings, minilm, random_factors):
    """Night 1 popularity (v1, champion); night 2 item-kNN (v2, promoted, replaced v1); night 3 random factors
    (v3, challenger, kept out: v2 refitted as v4, the champion, which remembers v2)."""
    run_night(shop_settings, NIGHT_1, ("popularity",), minilm)
    run_night(shop_settings, NIGHT_2, ("item_knn",), minilm)
    _, decision = run_night(shop_settings, NIGHT_3, (random_factors,), minilm)
    assert (decision.outcome, decision.champion_before, decision.champion_after) == (gate.KEPT_REFITTED, "2", "4")
    return shop_settings.model_copy(update={"registry_keep_latest": 1, "registry_rollback_depth": 1})


def artifact_folders(settings) -> dict[str, Path]:
    """Every registered version → the folder of its logged model's artifacts."""
    client = mlflow_client(settings)
    locations = {
        str(v.version): client.get_logged_model(logged_model_id(v)).artifact_location
        for v in recommender_versions(client)
    }
    return {number: Path(urlparse(location).path) for number, location in locations.items()}


def test_models_prune_dry_run_lists_what_it_would_delete(registry_three_nights_old) -> None:
    env = {
        "SHOPFLOW_HOME": str(registry_three_nights_old.home),
        "SHOPFLOW_REGISTRY_KEEP_LATEST": "1",
        "SHOPFLOW_REGISTRY_ROLLBACK_DEPTH": "1",
    }
    planned = CliRunner().invoke(app, ["models", "prune", "--dry-run"], env=env)
    assert planned.exit_code == 0, planned.output
    assert re.fullmatch(r"would delete v1 \(\d+\.\d MB of artifacts\); kept 3 versions\n", planned.output)
    refused = CliRunner().invoke(app, ["models", "promote", "99", "--reason", "typo"], env=env)
    assert refused.exit_code == 1 and "cannot promote v99: no such version" in refused.output


def test_a_prune_deletes_old_versions_with_their_artifacts_and_keeps_rollback_working(registry_three_nights_old):
    settings = registry_three_nights_old
    folders = artifact_folders(settings)
    assert sorted(folders, key=int) == ["1", "2", "3", "4"] and all(folder.is_dir() for folder in folders.values())
    v1_bytes = sum(path.stat().st_size for path in folders["1"].rglob("*") if path.is_file())
    client = mlflow_client(settings)
    v1_model = logged_model_id(client.get_model_version(RECOMMENDER_MODEL_NAME, "1"))
    night_1_run = client.get_logged_model(v1_model).source_run_id

    planned = prune_model_versions(settings, dry_run=True)
    assert (planned.kept, planned.deleted, planned.freed_bytes) == (["2", "3", "4"], ["1"], v1_bytes)
    assert sorted(artifact_folders(settings), key=int) == ["1", "2", "3", "4"]  # a dry run deletes nothing

    pruned = prune_model_versions(settings)
    # kept: v4 the newest and champion, v3 the challenger, v2 the champion's one rollback step
    assert (pruned.kept, pruned.deleted, pruned.freed_bytes) == (["2", "3", "4"], ["1"], v1_bytes)
    assert not folders["1"].parent.exists()  # models/<id>/artifacts, and the model's emptied folder
    assert all(folders[number].is_dir() for number in ("2", "3", "4"))
    with pytest.raises(MlflowException, match="not found"):
        client.get_logged_model(v1_model)  # marked deleted (``mlflow gc`` would find nothing left to remove)
    assert client.get_run(night_1_run).data.metrics  # the night's run (metrics, plot) stays
    assert prune_model_versions(settings).deleted == []  # nothing left to prune

    write_champion_recommendations(settings, NIGHT_3)  # the champion still loads
    assert rollback_champion(settings).champion_after == "2"
    with pytest.raises(LookupError, match="deleted by retention"):
        rollback_champion(settings)  # v2 replaced v1, which is gone
    with pytest.raises(LookupError, match="cannot promote v1"):
        promote_version(settings, "1", "the old popularity model")
    assert promote_version(settings, "4", "back to the refit").champion_after == "4"
