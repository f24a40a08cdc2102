"""``marts.model_decisions``: every change (or deliberate non-change) of the champion, kept across nights.

One row per decision: the nightly gate's, a manual promotion, a rollback, or an alias moved in the MLflow UI
(noticed the next night). The same facts are also tags of the model versions; this table is the analysts' view.
"""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime

import pandas as pd

from shopflow.registry.gate import PromotionDecision
from shopflow.settings import Settings
from shopflow.warehouse import connect

DECISIONS_TABLE = "marts.model_decisions"
DECISION_COLUMNS = {
    "decided_at": "timestamp",
    "run_date": "date",
    "model_name": "varchar",
    "action": "varchar",
    "outcome": "varchar",
    "promoted": "boolean",
    "challenger_version": "varchar",
    "champion_before": "varchar",
    "champion_after": "varchar",
    "challenger_ndcg_at_10": "double",
    "champion_ndcg_at_10": "double",
    "ndcg_delta": "double",
    "ndcg_delta_ci_low": "double",
    "ndcg_delta_ci_high": "double",
    "evaluated_users": "integer",
    "margin": "double",
    "audit_passed": "boolean",
    "reason": "varchar",
    "decided_by": "varchar",
    "mlflow_run_id": "varchar",
    "details": "varchar",  # the whole decision as JSON
}


def record_decision(settings: Settings, decision: PromotionDecision, model_name: str) -> None:
    """Append ``decision`` to ``marts.model_decisions`` (created on first use) in the warehouse."""
    comparison = decision.comparison
    row = {
        "decided_at": datetime.now(UTC).replace(tzinfo=None),
        "run_date": decision.run_date,
        "model_name": model_name,
        "action": decision.action,
        "outcome": decision.outcome,
        "promoted": decision.promoted,
        "challenger_version": decision.challenger_version,
        "champion_before": decision.champion_before,
        "champion_after": decision.champion_after,
        "challenger_ndcg_at_10": comparison.challenger_ndcg if comparison else None,
        "champion_ndcg_at_10": comparison.champion_ndcg if comparison else None,
        "ndcg_delta": comparison.delta if comparison else None,
        "ndcg_delta_ci_low": comparison.delta_ci95[0] if comparison else None,
        "ndcg_delta_ci_high": comparison.delta_ci95[1] if comparison else None,
        "evaluated_users": comparison.evaluated_users if comparison else None,
        "margin": decision.margin,
        "audit_passed": decision.audit_passed,
        "reason": decision.reason,
        "decided_by": getpass.getuser(),
        "mlflow_run_id": decision.mlflow_run_id,
        "details": json.dumps(decision.to_dict()),
    }
    columns = ", ".join(f"{name} {sql_type}" for name, sql_type in DECISION_COLUMNS.items())
    with connect(settings) as con:
        con.execute("create schema if not exists marts")
        con.execute(f"create table if not exists {DECISIONS_TABLE} ({columns})")
        con.execute(
            f"insert into {DECISIONS_TABLE} ({', '.join(DECISION_COLUMNS)}) values ({', '.join(['?'] * len(row))})",
            list(row.values()),
        )


def read_decisions(settings: Settings) -> pd.DataFrame:
    """Every recorded decision, oldest first (an empty frame before the first one)."""
    with connect(settings, read_only=True) as con:
        exists = con.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = 'marts' and table_name = 'model_decisions'"
        ).fetchall()[0][0]
        if not exists:
            return pd.DataFrame(columns=list(DECISION_COLUMNS))
        return con.execute(f"select * from {DECISIONS_TABLE} order by decided_at").df()
