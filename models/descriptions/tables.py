"""DuckDB table writing shared by the description and moderation stages: a current table plus append-only logs."""

from __future__ import annotations

import pandas as pd

from shopflow.warehouse import list_tables, register_frame


def has_table(con, qualified_name: str) -> bool:
    """Whether ``schema.table`` exists as a base table in the connection's database."""
    schema, table = qualified_name.split(".")
    return (schema, table) in list_tables(con, (schema,))


def create_table(con, qualified_name: str, columns: dict[str, str], primary_key: tuple[str, ...] = ()) -> None:
    """``create table if not exists`` with the given column types (and primary key)."""
    definition = ", ".join(f"{name} {kind}" for name, kind in columns.items())
    if primary_key:
        definition += f", primary key ({', '.join(primary_key)})"
    con.execute(f"create schema if not exists {qualified_name.split('.')[0]}")
    con.execute(f"create table if not exists {qualified_name} ({definition})")


def upsert_and_append(
    con, rows: pd.DataFrame, current_table: str, key: tuple[str, ...], append_to: dict[str, pd.DataFrame]
) -> None:
    """In one transaction: replace ``rows`` (by ``key``) in ``current_table`` and append each frame to its table."""
    frames = {"current_rows": rows} | {f"append_{i}": frame for i, frame in enumerate(append_to.values())}
    con.execute("begin transaction")
    try:
        for name, frame in frames.items():
            register_frame(con, name, frame)
        for i, table in enumerate(append_to):
            con.execute(f"insert into {table} select * from append_{i}")
        key_list = ", ".join(key)
        con.execute(f"delete from {current_table} where ({key_list}) in (select ({key_list}) from current_rows)")
        con.execute(f"insert into {current_table} select * from current_rows")
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    finally:
        for name in frames:
            con.unregister(name)
