"""shopflow: the nightly data and ML workflow of an online shop (DuckDB + dbt + Prefect)."""

__version__ = "0.1.0"
