"""Cleaned copies of Parquet files: the same schema (and metadata), removed rows left out."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from safeset.sinks.base import Decisions, atomic_output
from safeset.sources.parquet import ParquetShard, ParquetSource


def clean_parquets(source: ParquetSource, decisions: Decisions, out: Path) -> None:
    for path in source.files:
        clean_parquet(path, source.shards_of(path), decisions, out / path.name)


def clean_parquet(path: Path, shards: list[ParquetShard], decisions: Decisions, dest: Path) -> None:
    def keep_rows(row_group: int, first_row: int, table: pa.Table) -> list[bool]:
        return [
            decisions.keep(str(path), s.index, s.location, None if s.error else s.load())
            for s in shards[row_group].samples(table)
        ]

    seen = write_filtered(path, dest, keep_rows)
    decisions.counts.files += 1
    decisions.check_all_seen(str(path), seen)


RowMask = Callable[[int, int, pa.Table], list[bool]]


def write_filtered(path: Path, dest: Path, keep_rows: RowMask) -> int:
    """Copy a Parquet file with its schema (and metadata), keeping the rows ``keep_rows`` marks.

    ``keep_rows(row_group, first_row, table)`` sees one whole row group at a time. Returns how
    many rows the file holds.
    """
    pf = pq.ParquetFile(path)
    first_row = 0
    with atomic_output(dest) as f, pq.ParquetWriter(f, pf.schema_arrow) as writer:
        for row_group in range(pf.num_row_groups):
            table = pf.read_row_group(row_group)
            mask = keep_rows(row_group, first_row, table)
            first_row += table.num_rows
            if any(mask):
                writer.write_table(table.filter(pa.array(mask, type=pa.bool_())))
    return first_row
