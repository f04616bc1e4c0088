"""Cleaned copies of Parquet files: the same schema (and metadata), removed rows left out."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from safeset.sinks.base import Decisions, atomic_output
from safeset.sources.parquet import ParquetShard, ParquetSource


def clean_parquets(source: ParquetSource, decisions: Decisions, out: Path) -> None:
    for path in source.files:
        clean_parquet(path, source.shards_of(path), decisions, out / path.name)


def clean_parquet(path: Path, shards: list[ParquetShard], decisions: Decisions, dest: Path) -> None:
    pf = pq.ParquetFile(path)
    seen = 0
    with atomic_output(dest) as f, pq.ParquetWriter(f, pf.schema_arrow) as writer:
        for shard in shards:
            table = pf.read_row_group(shard.row_group)
            mask = []
            for sample in shard.samples(table):
                seen += 1
                data = None if sample.error else sample.load()
                mask.append(decisions.keep(str(path), sample.index, sample.location, data))
            if any(mask):
                writer.write_table(table.filter(pa.array(mask, type=pa.bool_())))
    decisions.counts.files += 1
    decisions.check_all_seen(str(path), seen)
