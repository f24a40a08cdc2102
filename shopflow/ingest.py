"""Load new landing files into the warehouse's append-only ``raw`` schema, with a load audit.

Every contract column lands as VARCHAR exactly as delivered (type garbage included: dbt decides what is clean),
unknown columns are kept in the row's ``_extra`` JSON, and each row carries its lineage (load id, file, row number,
delivery day). A file is loaded whole or not at all:

- the same file again (same entity, day and sha256) is a no-op;
- a *different* file for an already-loaded entity and day is refused, unless ``redeliver=True`` loads it as the
  next version of that day (staging then reads only the newest version; older rows are quarantined, not lost);
- an unreadable or contract-breaking file is refused with a message naming the file and the problem. Refusals are
  recorded in ``audit.refusals``; nothing already loaded is touched.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import logging
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb

from shopflow.contract import ENTITIES, ContractError, LandingFile, normalize_column, scan_landing
from shopflow.progress import track
from shopflow.settings import Settings
from shopflow.warehouse import connect, quote_ident, sql_literal

log = logging.getLogger(__name__)

#: Lines of a DuckDB CSV error that quote the file or suggest fixes, not the cause.
_NOT_A_CAUSE = ("Original Line", "Possible", "*", "The search space", "file =")

LINEAGE_COLUMNS = {
    "_extra": "JSON",  # unknown delivered columns, as {"column": "value"}
    "_load_id": "INTEGER",  # -> audit.loads
    "_source_file": "VARCHAR",
    "_row_number": "BIGINT",  # 1-based position in the file
    "_delivery_date": "DATE",
}

_AUDIT_DDL = """
create schema if not exists raw;
create schema if not exists audit;
create sequence if not exists audit.load_ids start 1;
create table if not exists audit.loads (
    load_id integer primary key,
    entity varchar not null,
    delivery_date date not null,
    version integer not null,
    source_file varchar not null,
    sha256 varchar not null,
    bytes bigint not null,
    rows bigint not null,
    extra_columns varchar[] not null,
    loaded_at timestamp not null,
    unique (entity, delivery_date, version)
);
create table if not exists audit.refusals (
    source_file varchar not null,
    entity varchar,
    delivery_date date,
    sha256 varchar,
    reason varchar not null,
    refused_at timestamp not null
);
"""


class IngestError(RuntimeError):
    """Some landing files were refused; the message lists each file and why."""


@dataclass(frozen=True)
class LoadedFile:
    file: str
    entity: str
    day: date
    version: int
    rows: int


@dataclass(frozen=True)
class RefusedFile:
    file: str
    reason: str


@dataclass
class IngestReport:
    loaded: list[LoadedFile] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    refused: list[RefusedFile] = field(default_factory=list)

    @property
    def rows_loaded(self) -> int:
        return sum(f.rows for f in self.loaded)

    def raise_for_refusals(self) -> None:
        if self.refused:
            lines = "\n".join(f"  - {r.file}: {r.reason}" for r in self.refused)
            raise IngestError(f"{len(self.refused)} landing file(s) refused (nothing of them was loaded):\n{lines}")

    def to_dict(self) -> dict:
        return {
            "loaded": [f.__dict__ | {"day": f.day.isoformat()} for f in self.loaded],
            "unchanged": self.unchanged,
            "refused": [r.__dict__ for r in self.refused],
            "rows_loaded": self.rows_loaded,
        }


def ensure_raw_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the raw tables (all contract columns as VARCHAR plus lineage) and the audit tables."""
    con.execute(_AUDIT_DDL)
    for entity in ENTITIES.values():
        columns = [f"{quote_ident(c)} varchar" for c in entity.columns]
        columns += [f"{name} {sql_type}" for name, sql_type in LINEAGE_COLUMNS.items()]
        con.execute(f"create table if not exists raw.{entity.name} ({', '.join(columns)})")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def ingest_landing(settings: Settings, until: date | None = None, redeliver: bool = False) -> IngestReport:
    """Load every landing file delivered on or before ``until`` (default: all) that is not loaded yet."""
    files, misplaced = scan_landing(settings.landing_dir)
    report = IngestReport()
    with connect(settings) as con:
        ensure_raw_schema(con)
        for error in misplaced:
            _refuse(con, report, file=str(error).split(":", 1)[0], reason=str(error).split(": ", 1)[-1])
        in_scope = [landing for landing in files if until is None or landing.day <= until]
        for landing in track(in_scope, "ingest"):
            _ingest_file(con, landing, settings.landing_dir, redeliver, report)
    log.info(
        "ingest: %d file(s) loaded (%d rows), %d unchanged, %d refused",
        len(report.loaded),
        report.rows_loaded,
        len(report.unchanged),
        len(report.refused),
    )
    return report


def _ingest_file(
    con: duckdb.DuckDBPyConnection,
    landing: LandingFile,
    landing_dir: Path,
    redeliver: bool,
    report: IngestReport,
) -> None:
    name = str(landing.path.relative_to(landing_dir))
    sha256 = file_sha256(landing.path)
    previous = con.execute(
        "select version, sha256 from audit.loads where entity = ? and delivery_date = ? order by version",
        [landing.entity.name, landing.day],
    ).fetchall()
    if any(digest == sha256 for _, digest in previous):
        report.unchanged.append(name)
        return
    if previous and not redeliver:
        reason = (
            f"a different file for {landing.entity.name} on {landing.day} was already loaded "
            f"(sha256 {previous[-1][1][:12]}… vs {sha256[:12]}…); raw data is never overwritten — "
            "re-run ingest with --redeliver to load it as a new version of that day"
        )
        _refuse(con, report, name, reason, landing, sha256)
        return
    try:
        rows, extra = _load_file(con, landing, name, sha256, version=len(previous) + 1)
    except (ContractError, duckdb.Error, OSError, UnicodeDecodeError, EOFError) as exc:
        _refuse(con, report, name, _refusal_reason(exc), landing, sha256)
        return
    if extra:
        log.warning("%s: unknown column(s) kept in raw _extra: %s", name, ", ".join(extra))
    report.loaded.append(LoadedFile(name, landing.entity.name, landing.day, len(previous) + 1, rows))


def _load_file(
    con: duckdb.DuckDBPyConnection, landing: LandingFile, name: str, sha256: str, version: int
) -> tuple[int, list[str]]:
    """Append one file to ``raw.<entity>`` and record it in ``audit.loads``, in one transaction."""
    if landing.path.stat().st_size == 0:
        raise ContractError("empty file (not even a header row)")
    if landing.path.name.endswith(".gz"):
        _check_gzip_complete(landing.path)
    source = _reader_sql(landing)
    reader_columns = [row[0] for row in con.execute(f"describe select * from {source}").fetchall()]
    header = _csv_header(landing.path) if landing.file_format == "csv" else reader_columns
    if len(header) != len(reader_columns):
        raise ContractError(f"header has {len(header)} columns but the reader found {len(reader_columns)}")
    by_name: dict[str, str] = {}  # contract name -> the reader's column name
    for column, reader_column in zip(header, reader_columns, strict=True):
        normalized = normalize_column(column)
        if normalized in by_name:
            raise ContractError(f"column {normalized!r} appears twice in the header")
        by_name[normalized] = reader_column
    missing = landing.entity.missing_required(by_name)
    if missing:
        raise ContractError(f"missing required column(s) {', '.join(missing)}; header is {header}")
    extra = [c for c in by_name if c not in landing.entity.columns]

    def value(column: str) -> str:
        return f"cast({quote_ident(by_name[column])} as varchar)" if column in by_name else "null"

    extra_json = "json_object(" + ", ".join(f"{sql_literal(c)}, {value(c)}" for c in extra) + ")" if extra else "null"
    selected = [f"{value(c)} as {quote_ident(c)}" for c in landing.entity.columns]
    con.execute("begin transaction")
    try:
        load_id = con.execute("select nextval('audit.load_ids')").fetchall()[0][0]
        con.execute(
            f"""
            insert into raw.{landing.entity.name}
            select {", ".join(selected)},
                   {extra_json}::json as _extra,
                   ? as _load_id,
                   ? as _source_file,
                   row_number() over () as _row_number,
                   ? as _delivery_date
            from {source}
            """,
            [load_id, name, landing.day],
        )
        rows = con.execute(f"select count(*) from raw.{landing.entity.name} where _load_id = ?", [load_id]).fetchall()[
            0
        ][0]
        con.execute(
            "insert into audit.loads values (?, ?, ?, ?, ?, ?, ?, ?, ?, current_timestamp)",
            [
                load_id,
                landing.entity.name,
                landing.day,
                version,
                name,
                sha256,
                landing.path.stat().st_size,
                rows,
                extra,
            ],
        )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return rows, extra


def _check_gzip_complete(path: Path) -> None:
    """Decompress to the end: DuckDB reads a truncated gzip without complaint, silently dropping its tail."""
    try:
        with gzip.open(path, "rb") as handle:
            while handle.read(1 << 20):
                pass
    except (EOFError, OSError, gzip.BadGzipFile) as exc:
        raise ContractError(f"corrupt or truncated gzip: {exc}") from exc


def _csv_header(path: Path) -> list[str]:
    """The header cells exactly as delivered (DuckDB would silently rename duplicated names)."""
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8-sig", newline="") as handle:
        return next(csv.reader(handle), [])


def _reader_sql(landing: LandingFile) -> str:
    path = sql_literal(landing.path)
    if landing.file_format == "parquet":
        return f"read_parquet({path})"
    # Everything as text, dialect fixed (no sniffing surprises), strict about ragged rows.
    return (
        f"read_csv({path}, header = true, all_varchar = true, delim = ',', quote = '\"', escape = '\"', "
        "strict_mode = true, null_padding = false)"
    )


def _refuse(
    con: duckdb.DuckDBPyConnection,
    report: IngestReport,
    file: str,
    reason: str,
    landing: LandingFile | None = None,
    sha256: str | None = None,
) -> None:
    log.error("refused %s: %s", file, reason)
    report.refused.append(RefusedFile(file, reason))
    con.execute(
        "insert into audit.refusals values (?, ?, ?, ?, ?, current_timestamp)",
        [file, landing.entity.name if landing else None, landing.day if landing else None, sha256, reason],
    )


def _refusal_reason(exc: Exception) -> str:
    """The first line of the error, plus its cause where DuckDB states it on a later line ("CSV Error on Line: 2"
    alone does not say that the file is not UTF-8 or that a row has a surplus column). Quoted file content and
    DuckDB's suggestions are left out."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    if isinstance(exc, duckdb.Error):
        cause = next((line for line in lines[1:] if not line.startswith(_NOT_A_CAUSE)), None)
        if cause:
            return f"{lines[0]}: {cause}"
    return lines[0]
