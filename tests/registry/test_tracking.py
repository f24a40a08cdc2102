"""The data root's MLflow store."""

import sqlite3

from shopflow.registry.champion import champion_config
from shopflow.registry.tracking import open_tracking_store
from shopflow.settings import Settings


def test_opening_a_fresh_data_roots_store_creates_mlflows_tables_and_finds_no_champion(tmp_path) -> None:
    settings = Settings(home=tmp_path / "fresh")
    database = settings.mlflow_dir / "mlflow.db"
    assert not database.exists()
    open_tracking_store(settings)
    with sqlite3.connect(database) as con:
        tables = {name for (name,) in con.execute("select name from sqlite_master where type = 'table'")}
    assert {"alembic_version", "experiments", "runs", "registered_models", "model_versions"} <= tables
    open_tracking_store(settings)  # an open store is opened again without harm
    assert champion_config(settings) is None
