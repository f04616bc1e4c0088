"""Tables of image URLs (LAION metadata, img2dataset inputs): their columns and their rows.

A table is a Parquet file or a CSV/TSV file with a header. Columns are found by name, ignoring
case: the URL column (``url`` unless told otherwise), an optional caption (``caption`` or
``text``) and an optional key (``key`` or ``sample_id``).

CSV records are read together with their raw bytes, so a cleaned copy can reproduce every kept
record byte for byte, quoting, line endings and all.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from safeset.errors import SafesetError

CAPTION_COLUMNS = ("caption", "text")
KEY_COLUMNS = ("key", "sample_id")
# A hash of the file at the url, as some tables record it (signals.recorded).
META_COLUMNS = ("md5", "sha1", "sha256", "sha512")
DELIMITERS = {".csv": ",", ".tsv": "\t"}
BOM = "\ufeff"


def is_delimited(path: Path) -> bool:
    return path.suffix.lower() in DELIMITERS


def delimiter_of(path: Path) -> str:
    return DELIMITERS[path.suffix.lower()]


@dataclass(frozen=True)
class UrlColumns:
    """Where in a row the URL, caption and key are: column names (Parquet) or positions (CSV)."""

    url: str
    caption: str | None
    key: str | None
    positions: tuple[int, int | None, int | None] = (0, None, None)
    #: Metadata columns carried into Sample.meta (recorded hashes of the file at the url):
    #: (lower-case name, column name, CSV position).
    meta: tuple[tuple[str, str, int], ...] = ()


def find_url_columns(path: Path, names: list[str], url_col: str) -> UrlColumns:
    """The URL table's columns, or SafesetError naming the columns there are."""
    lower = {n.removeprefix(BOM).strip().lower(): n for n in reversed(names)}
    url = lower.get(url_col.lower())
    if url is None:
        raise SafesetError(
            f"{path}: no url column {url_col!r} (choose one with --url-col); "
            f"columns are: {', '.join(names)}"
        )
    caption = next((lower[c] for c in CAPTION_COLUMNS if c in lower), None)
    key = next((lower[c] for c in KEY_COLUMNS if c in lower), None)
    positions = (names.index(url), _index(names, caption), _index(names, key))
    meta = tuple((c, lower[c], names.index(lower[c])) for c in META_COLUMNS if c in lower)
    return UrlColumns(url, caption, key, positions, meta)


def _index(names: list[str], name: str | None) -> int | None:
    return None if name is None else names.index(name)


@dataclass(frozen=True)
class UrlRow:
    url: str | None
    caption: str | None
    key: str | None
    meta: dict[str, str | None] = field(default_factory=dict)


# ---------------------------------------------------------------- Parquet


def parquet_rows(
    path: Path, row_group: int, skip: int, count: int, cols: UrlColumns
) -> list[UrlRow]:
    """Rows ``skip .. skip+count`` of one row group, reading only the three columns needed."""
    names = [c for c in (cols.url, cols.caption, cols.key) if c] + [c for _, c, _ in cols.meta]
    wanted = list(dict.fromkeys(names))
    table = pq.ParquetFile(path).read_row_group(row_group, columns=wanted).slice(skip, count)
    urls = _strings(table, cols.url)
    captions = _strings(table, cols.caption)
    keys = _strings(table, cols.key)
    meta = {name: _strings(table, column) or [] for name, column, _ in cols.meta}
    return [
        UrlRow(
            urls[i],
            captions[i] if captions else None,
            keys[i] if keys else None,
            {name: values[i] for name, values in meta.items()},
        )
        for i in range(table.num_rows)
    ]


def _strings(table: pa.Table, column: str | None) -> list[str | None] | None:
    if column is None:
        return None
    return [None if v is None else str(v) for v in table.column(column).to_pylist()]


# ---------------------------------------------------------------- CSV / TSV


@dataclass(frozen=True)
class Record:
    """One CSV record: its fields (empty for a blank line) and the exact bytes it came from."""

    fields: list[str]
    raw: bytes


def records(f: BinaryIO, path: Path) -> Iterator[Record]:
    """The records from ``f``'s position on; a quoted field may span several lines."""
    consumed: list[bytes] = []

    def lines() -> Iterator[str]:
        for line in f:
            consumed.append(line)
            # surrogateescape: bytes that are not UTF-8 survive the round trip unchanged.
            yield line.decode("utf-8", "surrogateescape")

    reader = csv.reader(lines(), delimiter=delimiter_of(path))
    try:
        for fields in reader:
            raw = b"".join(consumed)
            consumed.clear()
            yield Record(fields, raw)
    except csv.Error as exc:
        raise SafesetError(f"{path}: malformed CSV near line {reader.line_num}: {exc}") from None


def table_records(f: BinaryIO, path: Path) -> Iterator[tuple[Record, bool]]:
    """Every record of a whole file and whether it is a data row: the first non-blank record
    is the header, and blank lines are no rows either."""
    header_seen = False
    for record in records(f, path):
        yield record, header_seen and bool(record.fields)
        header_seen = header_seen or bool(record.fields)


@dataclass(frozen=True)
class CsvLayout:
    """A delimited file's header and where every ``every``-th data row starts."""

    header: list[str]
    rows: int
    starts: list[tuple[int, int]]  # (byte offset, row number) of each block of ``every`` rows


def csv_layout(path: Path, every: int) -> CsvLayout:
    """One pass over the file to find its header, its row count and the blocks' offsets."""
    header: list[str] = []
    rows, offset, starts = 0, 0, []
    with open_binary(path) as f:
        for record, is_row in table_records(f, path):
            if is_row:
                if rows % every == 0:
                    starts.append((offset, rows))
                rows += 1
            elif not header:
                header = record.fields
            offset += len(record.raw)
    if not header:
        raise SafesetError(f"{path}: empty file, expected a header row naming the url column")
    return CsvLayout(header, rows, starts)


def csv_rows(path: Path, offset: int, count: int, cols: UrlColumns) -> list[UrlRow]:
    """``count`` data rows starting at byte ``offset`` (blank lines are not rows)."""
    url_at, caption_at, key_at = cols.positions
    out: list[UrlRow] = []
    with open_binary(path) as f:
        f.seek(offset)
        for record in records(f, path):
            if not record.fields:
                continue
            out.append(
                UrlRow(
                    field_at(record.fields, url_at),
                    field_at(record.fields, caption_at),
                    field_at(record.fields, key_at),
                    {name: field_at(record.fields, at) for name, _, at in cols.meta},
                )
            )
            if len(out) == count:
                break
    return out


def field_at(fields: list[str], at: int | None) -> str | None:
    if at is None or at >= len(fields):
        return None
    return fields[at].strip() or None


def open_binary(path: Path) -> BinaryIO:
    try:
        return open(path, "rb")
    except OSError as exc:
        raise SafesetError(f"cannot read {path}: {exc.strerror or exc}") from None
