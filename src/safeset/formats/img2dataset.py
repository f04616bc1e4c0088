"""img2dataset's files beside each shard, kept true to a cleaned copy.

img2dataset writes, for shard ``00000``, the data (``00000.tar`` or ``00000.parquet``), and
beside a tar a metadata ``00000.parquet`` (one row per url tried: key, url, caption, status,
error_message, sha256...) and ``00000_stats.json`` (count, successes, failed_to_download,
failed_to_resize, status_dict, times). A cleaned shard gets both again:

- the metadata Parquet minus the rows of the samples left out of the cleaned tar (matched by
  ``key``; rows of failed downloads, which never were samples, stay), same schema;
- ``_stats.json`` minus those rows: ``count`` and the counter of each removed row's status
  (``successes``, ``failed_to_download`` or ``failed_to_resize``) go down by one per row, as
  does its ``status_dict`` entry ("success", or the row's error message); the times, the
  duration and every other field are img2dataset's own, unchanged.
"""

from __future__ import annotations

import json
import tarfile
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from safeset.atomic import atomic_file
from safeset.errors import SafesetError
from safeset.formats.clean import Decisions

STATUS_COUNTERS = {
    "success": "successes",
    "failed_to_download": "failed_to_download",
    "failed_to_resize": "failed_to_resize",
}


def stats_file(shard: Path) -> Path:
    stem = shard.name.split(".", 1)[0]
    return shard.with_name(f"{stem}_stats.json")


def clean_tar_sidecars(tar: Path, cleaned: Path, folder: Path | None) -> None:
    """A cleaned tar's metadata Parquet and ``_stats.json``, when img2dataset wrote them."""
    if folder is None:
        return
    meta = tar.with_name(tar.name.split(".", 1)[0] + ".parquet")
    if not meta.is_file():
        return
    left_out = _tar_keys(tar) - _tar_keys(cleaned)
    schema = pq.read_schema(meta)
    if "key" not in schema.names:
        raise SafesetError(
            f"{meta}: no key column, so its rows of removed samples cannot be told apart"
        )
    table = pq.read_table(meta)
    keys = table.column("key").to_pylist()
    keep = [str(k) not in left_out for k in keys]
    dest_meta = cleaned.with_name(meta.name)
    _write_table(table.filter(pa.array(keep, pa.bool_())), schema, dest_meta)
    _write_stats(tar, cleaned, table, keep)


def clean_parquet_stats(path: Path, cleaned: Path, decisions: Decisions) -> None:
    """The ``_stats.json`` of an img2dataset Parquet shard, minus the rows left out of it."""
    stats = stats_file(path)
    if not stats.is_file() or not cleaned.is_file():
        return
    schema = pq.read_schema(path)
    if "status" not in schema.names:
        return
    recorded = decisions.recorded.get(str(path), {})
    table = pq.read_table(
        path, columns=[c for c in ("status", "error_message") if c in schema.names]
    )
    keep = [
        (scanned := recorded.get(row)) is not None and scanned.action in decisions.keep_actions
        for row in range(table.num_rows)
    ]
    _write_stats(path, cleaned, table, keep)


def _tar_keys(tar: Path) -> set[str]:
    from safeset.formats.webdataset import member_key

    with tarfile.open(tar, "r:*") as tf:
        return {member_key(m.name) for m in tf if not m.isdir()}


def _write_table(table: pa.Table, schema: pa.Schema, dest: Path) -> None:
    with atomic_file(dest, overwrite=False) as f, pq.ParquetWriter(f, schema) as writer:
        writer.write_table(table.cast(schema))


def _write_stats(shard: Path, cleaned: Path, table: pa.Table, keep: list[bool]) -> None:
    source = stats_file(shard)
    if not source.is_file():
        return
    try:
        stats: dict[str, Any] = json.loads(source.read_text())
    except (OSError, ValueError):
        raise SafesetError(f"{source}: not readable JSON; cannot write it again") from None
    statuses = table.column("status").to_pylist()
    errors = (
        table.column("error_message").to_pylist()
        if "error_message" in table.column_names
        else [None] * len(statuses)
    )
    removed: Counter[str] = Counter()
    removed_entries: Counter[str] = Counter()
    for kept, status, error in zip(keep, statuses, errors, strict=True):
        if kept:
            continue
        removed["count"] += 1
        if status in STATUS_COUNTERS:
            removed[STATUS_COUNTERS[status]] += 1
        removed_entries["success" if status == "success" else str(error)] += 1
    for name, n in removed.items():
        if isinstance(stats.get(name), int):
            stats[name] = max(0, stats[name] - n)
    entries = stats.get("status_dict")
    if isinstance(entries, dict):
        for name, n in removed_entries.items():
            if isinstance(entries.get(name), int):
                entries[name] -= n
                if entries[name] <= 0:
                    del entries[name]
    with atomic_file(stats_file(cleaned), overwrite=False) as f:
        f.write(json.dumps(stats, indent=4).encode())
