"""Tables of image URLs, downloaded while they are scanned (bytes in memory, never on disk).

Each shard is a block of at most ``ROWS_PER_SHARD`` rows of one file (within one row group for
Parquet); its images are fetched on ``FetchOptions.threads`` threads and yielded in row order.
Every row becomes exactly one sample: with its bytes, or with the reason it has none as its
error. Key = the ``key``/``sample_id`` column when present, else the row number.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from safeset.errors import SafesetError
from safeset.fetch import Fetched, FetchOptions, fetch, map_ordered
from safeset.formats.base import FileSource, Format, Shard, Source, SourceOptions, Target
from safeset.formats.clean import Decisions, atomic_output, output_path
from safeset.formats.parquet import open_parquet, parquet_files, read_schema, write_filtered
from safeset.formats.url_table import (
    UrlColumns,
    UrlRow,
    csv_layout,
    csv_rows,
    field_at,
    find_url_columns,
    is_delimited,
    open_binary,
    parquet_rows,
    table_records,
)
from safeset.sample import Sample

ROWS_PER_SHARD = 1000


def row_location(row: int) -> str:
    """Where a sample lives in its table (what a sink checks before dropping a row)."""
    return f"row {row}"


@dataclass(frozen=True)
class RowBlock:
    """Consecutive rows of one table file: the unit a shard reads."""

    first_row: int
    count: int
    # Parquet: the row group and the rows to skip in it. CSV: the block's byte offset (skip 0).
    start: int
    skip: int


@dataclass(frozen=True)
class UrlShard(Shard):
    path: str
    columns: UrlColumns
    block: RowBlock
    fetch: FetchOptions

    def rows(self) -> list[UrlRow]:
        path, b = Path(self.path), self.block
        if is_delimited(path):
            return csv_rows(path, b.start, b.count, self.columns)
        return parquet_rows(path, b.start, b.skip, b.count, self.columns)

    def read(self) -> Iterator[Sample]:
        rows = self.rows()
        fetched = map_ordered(lambda r: fetch(r.url, self.fetch), rows, self.fetch.threads)
        for offset, (row, got) in enumerate(zip(rows, fetched, strict=True)):
            yield self._sample(self.block.first_row + offset, row, got)

    def _sample(self, index: int, row: UrlRow, got: Fetched) -> Sample:
        data = got.data or b""
        return Sample(
            key=row.key or str(index),
            source=self.path,
            location=row_location(index),
            index=index,
            load=lambda: data,
            caption=row.caption,
            url=row.url,
            meta=dict(row.meta),
            error=got.error,
        )


class UrlSource(FileSource):
    kind = "urls"

    def __init__(
        self, files: list[Path], options: SourceOptions, folder: Path | None = None
    ) -> None:
        self.files = files
        # The folder the user named, if any: all of it then counts as the source.
        self.folder = folder
        self.url_col = options.url_col
        self.fetch = options.fetch
        self._layout: dict[Path, tuple[UrlColumns, list[RowBlock]]] = {}

    def layout(self, path: Path) -> tuple[UrlColumns, list[RowBlock]]:
        """A file's columns and row blocks, computed once (a CSV needs a full pass)."""
        if path not in self._layout:
            blocks = _csv_blocks if is_delimited(path) else _parquet_blocks
            self._layout[path] = blocks(path, self.url_col)
        return self._layout[path]

    def rows(self, path: Path) -> int:
        return sum(b.count for b in self.layout(path)[1])

    def shards(self, prefix: str) -> list[Shard]:
        shards: list[Shard] = []
        for path in self.files:
            columns, blocks = self.layout(path)
            for block in blocks:
                shard_id = f"{prefix}-{len(shards):06d}"
                shards.append(UrlShard(shard_id, str(path), columns, block, self.fetch))
        return shards

    def describe(self) -> dict[str, Any]:
        # Download settings are left out: resuming with a longer --timeout is the same job.
        return {
            "kind": self.kind,
            "url_col": self.url_col,
            "files": [{"path": str(p.resolve()), "rows": self.rows(p)} for p in self.files],
        }

    def clean(self, decisions: Decisions, out: Path) -> None:
        """The same table minus the removed rows, the Re-LAION way, so that everyone holding a
        copy can clean it: Parquet keeps its schema and metadata; CSV/TSV keeps every kept
        record's bytes exactly (header, quoting, line endings, blank lines). Nothing is
        downloaded: each row's recorded action, checked against its URL, is all it needs."""
        for path in self.files:
            columns, _ = self.layout(path)
            dest = output_path(path, self.folder, out)
            if is_delimited(path):
                seen = clean_delimited(path, columns, decisions, dest)
            else:
                seen = clean_parquet_table(path, columns, decisions, dest)
            decisions.counts.files += 1
            decisions.check_all_seen(str(path), seen)


class UrlTableFormat(Format):
    """CSV/TSV files, or Parquet files without image bytes but with a url column."""

    name = "urls"

    @classmethod
    def detect(cls, target: Target) -> Source | None:
        if target.flat_files(is_delimited):
            return UrlSource(target.files, target.options, folder=target.folder)
        files = parquet_files(target)
        if files is None:
            return None
        url_col = target.options.url_col.lower()
        for f in files:
            schema = read_schema(f)
            if schema is not None and url_col not in {n.lower() for n in schema.names}:
                raise SafesetError(
                    f"{f}: neither image bytes (a binary column such as jpg, png, image) nor a "
                    f"url column {target.options.url_col!r} (--url-col); columns are: "
                    f"{', '.join(schema.names)}"
                )
        return UrlSource(files, target.options, folder=target.folder)


def _parquet_blocks(path: Path, url_col: str) -> tuple[UrlColumns, list[RowBlock]]:
    pf = open_parquet(path)
    columns = find_url_columns(path, pf.schema_arrow.names, url_col)
    blocks: list[RowBlock] = []
    first = 0
    for rg in range(pf.num_row_groups):
        size = pf.metadata.row_group(rg).num_rows
        for skip in range(0, size, ROWS_PER_SHARD):
            count = min(ROWS_PER_SHARD, size - skip)
            blocks.append(RowBlock(first + skip, count, rg, skip))
        first += size
    return columns, blocks


def _csv_blocks(path: Path, url_col: str) -> tuple[UrlColumns, list[RowBlock]]:
    layout = csv_layout(path, ROWS_PER_SHARD)
    columns = find_url_columns(path, layout.header, url_col)
    blocks = [
        RowBlock(row, min(ROWS_PER_SHARD, layout.rows - row), offset, 0)
        for offset, row in layout.starts
    ]
    return columns, blocks


def clean_parquet_table(path: Path, columns: UrlColumns, decisions: Decisions, dest: Path) -> int:
    def keep_rows(_row_group: int, first_row: int, table: pa.Table) -> list[bool]:
        urls = table.column(columns.url).to_pylist()
        return [
            _keep(decisions, path, first_row + offset, None if url is None else str(url))
            for offset, url in enumerate(urls)
        ]

    return write_filtered(path, dest, keep_rows)


def clean_delimited(path: Path, columns: UrlColumns, decisions: Decisions, dest: Path) -> int:
    rows = 0
    with open_binary(path) as f, atomic_output(dest) as outf:
        for record, is_row in table_records(f, path):
            # The header and blank lines are not rows: they are always kept.
            if is_row:
                url = field_at(record.fields, columns.positions[0])
                keep = _keep(decisions, path, rows, url)
                rows += 1
                if not keep:
                    continue
            outf.write(record.raw)
    return rows


def _keep(decisions: Decisions, path: Path, row: int, url: str | None) -> bool:
    return decisions.kept(str(path), row, row_location(row), url=url) is not None
