"""The raw data contract: which entities a shop delivers, their columns, and the landing layout.

A delivery is one file per entity per day: ``landing/<entity>/<YYYY-MM-DD>.<csv|csv.gz|parquet>``.
Required columns must be present (values may still be dirty: cleaning quarantines bad rows); optional columns
may be absent; any other column is kept in raw as part of the row's ``_extra`` JSON.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

FILE_FORMATS = {".csv": "csv", ".csv.gz": "csv", ".parquet": "parquet"}
_FILE_NAME = re.compile(r"^(?P<day>\d{4}-\d{2}-\d{2})(?P<suffix>\.csv|\.csv\.gz|\.parquet)$")


class ContractError(ValueError):
    """A delivery that breaks the contract; the message names the file and the problem."""


@dataclass(frozen=True)
class Entity:
    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    description: str

    @property
    def columns(self) -> tuple[str, ...]:
        """Every contract column, in raw-table order."""
        return self.required + self.optional

    def missing_required(self, header: Iterable[str]) -> list[str]:
        present = {normalize_column(c) for c in header}
        return [c for c in self.required if c not in present]


ENTITIES: dict[str, Entity] = {
    e.name: e
    for e in (
        Entity(
            "orders",
            required=("order_id", "user_id", "product_id", "quantity", "unit_price", "ordered_at"),
            optional=("line_no", "currency", "status", "country"),
            description="One row per order line. Negative quantity = return/cancellation; "
            "status is placed|cancelled|returned.",
        ),
        Entity(
            "clicks",
            required=("user_id", "product_id", "event_type", "occurred_at"),
            optional=("event_id", "session_id"),
            description="One row per click event; event_type is view|add_to_cart|remove_from_cart|purchase.",
        ),
        Entity(
            "products",
            required=("product_id", "title"),
            optional=("category", "brand", "price", "currency", "attributes", "description", "updated_at"),
            description="Catalogue snapshot or delta: one row per product version; attributes is a JSON object.",
        ),
        Entity(
            "reviews",
            required=("review_id", "product_id", "body", "created_at"),
            optional=("user_id", "rating", "title"),
            description="One row per review; rating is 1-5.",
        ),
    )
}

ORDER_STATUSES = ("placed", "cancelled", "returned")
CLICK_EVENT_TYPES = ("view", "add_to_cart", "remove_from_cart", "purchase")


def normalize_column(name: str) -> str:
    """Header cell → column name: trimmed, lower-case, BOM removed."""
    return name.replace("\ufeff", "").strip().lower()


@dataclass(frozen=True)
class LandingFile:
    """One delivered file, identified by its place in the landing layout."""

    path: Path
    entity: Entity
    day: date
    file_format: str  # "csv" or "parquet"

    @property
    def relative_name(self) -> str:
        return f"{self.entity.name}/{self.path.name}"


def parse_landing_path(path: Path) -> LandingFile:
    """Identify a landing file from ``<entity>/<YYYY-MM-DD>.<ext>``, or raise ContractError saying why not."""
    entity_name = path.parent.name
    if entity_name not in ENTITIES:
        raise ContractError(f"{path}: unknown entity folder {entity_name!r} (expected one of {sorted(ENTITIES)})")
    match = _FILE_NAME.match(path.name)
    if not match:
        raise ContractError(f"{path}: file name must be YYYY-MM-DD.csv, YYYY-MM-DD.csv.gz or YYYY-MM-DD.parquet")
    try:
        day = date.fromisoformat(match["day"])
    except ValueError as exc:
        raise ContractError(f"{path}: {match['day']!r} is not a calendar date") from exc
    return LandingFile(path, ENTITIES[entity_name], day, FILE_FORMATS[match["suffix"]])


def landing_path(landing_dir: Path, entity: str, day: date, suffix: str = ".csv") -> Path:
    """Where a delivery for ``entity`` on ``day`` belongs."""
    if entity not in ENTITIES:
        raise ContractError(f"unknown entity {entity!r}")
    if suffix not in FILE_FORMATS:
        raise ContractError(f"unsupported file suffix {suffix!r}")
    return landing_dir / entity / f"{day.isoformat()}{suffix}"


def scan_landing(landing_dir: Path) -> tuple[list[LandingFile], list[ContractError]]:
    """All well-named landing files (sorted by day, then entity) and an error for each misplaced file."""
    files: list[LandingFile] = []
    errors: list[ContractError] = []
    if not landing_dir.exists():
        return files, errors
    for path in sorted(p for p in landing_dir.glob("*/*") if p.is_file() and not p.name.startswith(".")):
        try:
            files.append(parse_landing_path(path))
        except ContractError as exc:
            errors.append(exc)
    files.sort(key=lambda f: (f.day, f.entity.name))
    return files, errors


def latest_landing_day(landing_dir: Path) -> date:
    """The newest delivery day in the landing folder (the default night to run)."""
    files, _ = scan_landing(landing_dir)
    if not files:
        raise ContractError(f"no landing files under {landing_dir}: run `shopflow demo` or `shopflow import` first")
    return max(f.day for f in files)
