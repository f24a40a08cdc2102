"""Adapter: UCI Online Retail daily CSVs (``by-day/YYYY-MM-DD.csv[.gz]``) → landing deliveries.

The adapter only maps formats. Every source row becomes exactly one ``orders`` row, in source order, with
its values passed through as strings: nothing is dropped, deduplicated, filtered or fixed, so the dataset's
real dirt (cancellations, null customers, non-product codes such as POST/DOT/M, zero and negative prices,
null descriptions, exact duplicate lines) reaches raw and is handled by cleaning (dbt), not here.

Per source day ``D`` it writes, via :func:`shopflow.contract.landing_path`:

* ``landing/orders/D.csv``: ``order_id`` = InvoiceNo, ``user_id`` = CustomerID as an integer string
  (``"17850.0"`` → ``"17850"``; empty stays empty; anything else passes through unchanged),
  ``product_id`` = StockCode, ``quantity`` = Quantity, ``unit_price`` = UnitPrice, ``ordered_at`` =
  InvoiceDate (all verbatim), ``currency`` = ``GBP``, ``status`` = ``cancelled`` when InvoiceNo starts
  with ``C`` else ``placed``, ``country`` = Country, ``line_no`` empty (the source has none; inventing
  one would make exact duplicate lines distinguishable).
* ``landing/products/D.csv``: a catalogue *delta*. For each StockCode seen on ``D``: ``title`` = the
  day's modal non-empty Description (ties: alphabetically first), ``price`` = the day's modal non-empty
  UnitPrice (ties: lowest numeric value, then text), ``updated_at`` = the day's earliest InvoiceDate for
  the code. Every source row counts (cancellations and stock notes included: no filtering). A row is
  written only when the code has never been emitted or its (title, price) differs from the last row
  emitted for it. For an already-emitted code, a day without a Description (or UnitPrice) keeps the last
  emitted title (price), so a null alone never makes a new row; a code never seen with a Description is
  emitted with an empty title (cleaning quarantines it). Rows are sorted by product_id. The file is
  written (header only) even when the delta is empty.

Files are UTF-8 with ``\\n`` line endings, header = the contract column order, written by :mod:`csv`
(descriptions contain commas and quotes), each atomically (temp file + rename). Re-running writes
byte-identical files. Only the standard library reads the source, so no type sniffing can alter a value.

``days``: when given, only those days are written, but every earlier source day is still read so that
the product-delta state equals that of a full import. Requested days with no source file (Saturdays,
holidays) are listed in :attr:`ImportSummary.skipped_days` instead of raising.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from operator import itemgetter
from pathlib import Path

from shopflow.contract import ENTITIES, landing_path, normalize_column

CURRENCY = "GBP"
SOURCE_COLUMNS = (
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
    "Country",
)
_DAY_FILE = re.compile(r"^(?P<day>\d{4}-\d{2}-\d{2})\.csv(?:\.gz)?$")
_INTEGRAL_FLOAT = re.compile(r"^([+-]?\d+)\.0*$")

ORDER_COLUMNS = ENTITIES["orders"].columns
PRODUCT_COLUMNS = ENTITIES["products"].columns


@dataclass
class ImportSummary:
    """What an import wrote."""

    days: int  # day files written (per entity)
    rows: dict[str, int]  # entity -> data rows written
    files: list[Path]  # every file written, by day then entity
    skipped_days: list[date] = field(default_factory=list)  # requested days without a source file

    def to_dict(self) -> dict:
        return {
            "days": self.days,
            "rows": dict(self.rows),
            "files": [str(p) for p in self.files],
            "skipped_days": [d.isoformat() for d in self.skipped_days],
        }


# ---------------------------------------------------------------- source discovery


def resolve_source_dir(source_dir: Path) -> Path:
    """The ``by-day`` folder: ``source_dir`` itself, or ``source_dir/by-day`` when that exists."""
    source_dir = Path(source_dir)
    by_day = source_dir / "by-day"
    return by_day if by_day.is_dir() else source_dir


def find_day_files(source_dir: Path) -> dict[date, Path]:
    """``{day: file}`` for every ``YYYY-MM-DD.csv[.gz]`` in the source folder, sorted by day.

    Raises FileNotFoundError when the folder is missing or holds no day file, ValueError for an impossible
    date or a day delivered twice (``.csv`` and ``.csv.gz``).
    """
    folder = resolve_source_dir(source_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"Online Retail source folder {folder} does not exist")
    found: dict[date, Path] = {}
    for path in sorted(folder.iterdir()):
        match = _DAY_FILE.match(path.name)
        if not match or not path.is_file():
            continue
        try:
            day = date.fromisoformat(match["day"])
        except ValueError as exc:
            raise ValueError(f"{path}: {match['day']!r} is not a calendar date") from exc
        if day in found:
            raise ValueError(f"{folder}: day {day} is delivered twice ({found[day].name} and {path.name})")
        found[day] = path
    if not found:
        raise FileNotFoundError(f"no YYYY-MM-DD.csv or YYYY-MM-DD.csv.gz files in Online Retail folder {folder}")
    return dict(sorted(found.items()))


def read_day(path: Path) -> Iterator[tuple[str, ...]]:
    """The file's rows as 8-tuples of strings in :data:`SOURCE_COLUMNS` order, verbatim, in source order.

    Header names are matched case-insensitively (BOM/whitespace ignored); extra source columns are ignored;
    short rows are padded with empty strings; completely blank lines are not rows and are skipped.
    """
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{path}: empty file (expected header {','.join(SOURCE_COLUMNS)})")
        positions = {normalize_column(name): i for i, name in reversed(list(enumerate(header)))}
        missing = [c for c in SOURCE_COLUMNS if c.lower() not in positions]
        if missing:
            raise ValueError(f"{path}: missing Online Retail column(s) {missing}; header is {header}")
        index = [positions[c.lower()] for c in SOURCE_COLUMNS]
        width = max(index) + 1
        pick = itemgetter(*index)
        for row in reader:
            if len(row) < width:
                if not row:
                    continue
                row = row + [""] * (width - len(row))
            yield pick(row)


# ---------------------------------------------------------------- mapping


def format_user_id(customer_id: str) -> str:
    """``"17850.0"`` → ``"17850"``; empty stays empty; anything not integral passes through unchanged."""
    match = _INTEGRAL_FLOAT.match(customer_id)
    return str(int(match[1])) if match else customer_id


# The orders row is built in this fixed order, then permuted into the contract's column order.
_ORDER_BUILD = (
    "order_id",
    "user_id",
    "product_id",
    "quantity",
    "unit_price",
    "ordered_at",
    "line_no",
    "currency",
    "status",
    "country",
)
# A contract column this adapter does not know (a future optional one) is written empty (the extra slot).
_TO_CONTRACT_ORDER = itemgetter(
    *(_ORDER_BUILD.index(c) if c in _ORDER_BUILD else len(_ORDER_BUILD) for c in ORDER_COLUMNS)
)


def order_row(src: tuple[str, ...]) -> tuple[str, ...]:
    """One source row → one orders row (contract column order)."""
    invoice, stock_code, _description, quantity, invoiced_at, unit_price, customer_id, country = src
    match = _INTEGRAL_FLOAT.match(customer_id)
    user_id = str(int(match[1])) if match else customer_id
    status = "cancelled" if invoice.startswith("C") else "placed"
    return _TO_CONTRACT_ORDER(
        (invoice, user_id, stock_code, quantity, unit_price, invoiced_at, "", CURRENCY, status, country, "")
    )


def _price_key(value: str) -> tuple[float, str]:
    try:
        number = float(value)
    except ValueError:
        number = float("inf")
    if number != number:  # NaN
        number = float("inf")
    return (number, value)


def _mode(counts: dict[str, int], tie_key=lambda v: v) -> str:
    """Most frequent value; ties broken by ``tie_key`` (smallest first). Empty string when there is none."""
    if len(counts) <= 1:
        return next(iter(counts), "")
    return min(counts.items(), key=lambda kv: (-kv[1], tie_key(kv[0])))[0]


def _product_row(product_id: str, title: str, price: str, updated_at: str) -> list[str]:
    values = {
        "product_id": product_id,
        "title": title,
        "price": price,
        "currency": CURRENCY,
        "updated_at": updated_at,
    }  # category, brand, attributes, description: the source has none
    return [values.get(c, "") for c in PRODUCT_COLUMNS]


class ProductDeltas:
    """Catalogue state carried across days; :meth:`day_delta` returns the rows that changed that day."""

    def __init__(self) -> None:
        self.emitted: dict[str, tuple[str, str]] = {}  # product_id -> (title, price) last emitted

    def day_delta(self, rows: Iterable[tuple[str, ...]]) -> list[list[str]]:
        """Product rows for one day's source rows (contract column order, sorted by product_id)."""
        # code -> [description counts, price counts, earliest non-empty InvoiceDate]
        seen: dict[str, list] = {}
        for _invoice, code, description, _qty, invoiced_at, unit_price, _cust, _country in rows:
            agg = seen.get(code)
            if agg is None:
                agg = seen[code] = [{}, {}, invoiced_at]
            if description:
                titles = agg[0]
                titles[description] = titles.get(description, 0) + 1
            if unit_price:
                prices = agg[1]
                prices[unit_price] = prices.get(unit_price, 0) + 1
            if invoiced_at and (not agg[2] or invoiced_at < agg[2]):
                agg[2] = invoiced_at
        out: list[list[str]] = []
        for code in sorted(seen):
            titles, prices, first_at = seen[code]
            title = _mode(titles)
            price = _mode(prices, _price_key)
            previous = self.emitted.get(code)
            if previous is not None:
                title = title or previous[0]  # a null description alone never makes a new version
                price = price or previous[1]
                if (title, price) == previous:
                    continue
            self.emitted[code] = (title, price)
            out.append(_product_row(code, title, price, first_at))
        return out


# ---------------------------------------------------------------- writing


def _write_csv(path: Path, header: tuple[str, ...], rows: Iterable[list[str]]) -> None:
    """Write atomically (temp file + rename) so a crash never leaves a half-written delivery."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    with open(tmp, "w", encoding="utf-8", newline="") as fh:
        fh.write(buf.getvalue())
    os.replace(tmp, path)


def import_online_retail(source_dir: Path, landing_dir: Path, days: list[date] | None = None) -> ImportSummary:
    """Map the Online Retail day files in ``source_dir`` into ``landing_dir`` (see the module docstring)."""
    files = find_day_files(source_dir)
    landing_dir = Path(landing_dir)
    if days is None:
        wanted = set(files)
        skipped: list[date] = []
    else:
        wanted = set(days) & set(files)
        skipped = sorted(set(days) - set(files))
    last = max(wanted) if wanted else None

    products = ProductDeltas()
    rows = {"orders": 0, "products": 0}
    written: list[Path] = []
    for day, path in files.items():
        if last is None or day > last:
            break
        source_rows = list(read_day(path))
        delta = products.day_delta(source_rows)
        if day not in wanted:
            continue  # read only to carry the product state
        orders_path = landing_path(landing_dir, "orders", day)
        _write_csv(orders_path, ORDER_COLUMNS, map(order_row, source_rows))
        products_path = landing_path(landing_dir, "products", day)
        _write_csv(products_path, PRODUCT_COLUMNS, delta)
        rows["orders"] += len(source_rows)
        rows["products"] += len(delta)
        written += [orders_path, products_path]
    return ImportSummary(days=len(wanted), rows=rows, files=written, skipped_days=skipped)
