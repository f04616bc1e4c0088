"""Cleaned copies of Parquet files: the same schema (and metadata), removed rows left out."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from safeset.sinks.base import Decisions, atomic_output
from safeset.sources.parquet import ParquetShard, ParquetSource, UnreadablePart


def clean_parquets(source: ParquetSource, decisions: Decisions, out: Path) -> None:
    for path in source.files:
        clean_parquet(path, source.shards_of(path), decisions, out / path.name)


def clean_parquet(path: Path, shards: list[ParquetShard], decisions: Decisions, dest: Path) -> None:
    if shards and shards[0].broken:
        # Nothing of an unreadable file can be written; its one review row says so.
        _refuse_if_kept(shards[0], decisions, shards[0].error_sample(shards[0].broken))
        decisions.check_all_seen(str(path), 1)
        return
    seen = 0
    with atomic_output(dest) as f, pq.ParquetWriter(f, pq.ParquetFile(path).schema_arrow) as w:
        for shard in shards:
            try:
                table = shard.load_table(all_columns=True)
            except UnreadablePart as exc:
                seen += 1
                _refuse_if_kept(shard, decisions, shard.error_sample(str(exc)))
                continue
            mask = []
            for sample in shard.samples(table):
                seen += 1
                verdict = decisions.kept(str(path), sample.index, sample.location)
                if verdict is not None:
                    decisions.verify(verdict, str(path), [(sample.location, sample.load())])
                mask.append(verdict is not None)
            if any(mask):
                w.write_table(table.filter(pa.array(mask, type=pa.bool_())))
    decisions.counts.files += 1
    decisions.check_all_seen(str(path), seen)


def _refuse_if_kept(shard: ParquetShard, decisions: Decisions, sample) -> None:
    """An unreadable part stands for rows that cannot be written, kept or not."""
    if decisions.kept(shard.path, sample.index, sample.location) is not None:
        decisions.cannot_copy()


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
