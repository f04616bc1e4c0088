"""Tables of image URLs, downloaded while they are scanned (bytes in memory, never on disk).

Each shard is a block of at most ``ROWS_PER_SHARD`` rows of one file (within one row group for
Parquet); its images are fetched on ``FetchOptions.threads`` threads and yielded in row order.
Every row becomes exactly one sample: with its bytes, or with the reason it has none as its
error. Key = the ``key``/``sample_id`` column when present, else the row number.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safeset.sample import Sample
from safeset.sources.base import Shard, Source
from safeset.sources.fetch import Fetched, FetchOptions, fetch, map_ordered
from safeset.sources.parquet import open_parquet
from safeset.sources.url_table import (
    UrlColumns,
    UrlRow,
    csv_layout,
    csv_rows,
    find_url_columns,
    is_delimited,
    parquet_rows,
)

ROWS_PER_SHARD = 1000


def row_location(row: int) -> str:
    """Where a sample lives in its table (what a sink checks before dropping a row)."""
    return f"row {row}"


@dataclass(frozen=True)
class UrlOptions:
    """How URL tables are read (``url_col``) and their images downloaded (``fetch``)."""

    url_col: str = "url"
    fetch: FetchOptions = field(default_factory=FetchOptions)


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
            error=got.error,
        )


class UrlSource(Source):
    kind = "urls"

    def __init__(self, files: list[Path], options: UrlOptions, folder: Path | None = None) -> None:
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

    def roots(self) -> list[Path]:
        return [self.folder] if self.folder else list(self.files)

    def describe(self) -> dict[str, Any]:
        # Download settings are left out: resuming with a longer --timeout is the same job.
        return {
            "kind": self.kind,
            "url_col": self.url_col,
            "files": [{"path": str(p.resolve()), "rows": self.rows(p)} for p in self.files],
        }


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
