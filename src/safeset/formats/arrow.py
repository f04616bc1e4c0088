"""Hugging Face ``datasets`` on disk: ``save_to_disk`` folders and the cache's ``.arrow`` files.

Both are Arrow IPC streams whose schema carries the dataset's ``features`` (which column is an
``Image``: see formats.table_images). A shard is a run of record batches of one file, about
``ROWS_PER_SHARD`` rows; files are memory-mapped, so reaching a shard's batches costs no copy.

``clean`` writes a ``save_to_disk`` folder back that ``datasets.load_from_disk`` loads: each
``.arrow`` file again under its own name and place (splits of a ``DatasetDict`` keep their
folders), same schema and metadata, minus the rows left out, and the folder's ``state.json``,
``dataset_info.json`` and ``dataset_dict.json`` beside them (a new ``_fingerprint``, since the
data differ, so no ``map`` cache of the original is ever taken for the cleaned copy's; a
split's ``num_examples`` set to the rows kept).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from safeset.atomic import atomic_file
from safeset.errors import SafesetError
from safeset.formats.base import FileSource, Format, Shard, Source, Target
from safeset.formats.clean import Decisions, atomic_output, output_path
from safeset.formats.parquet import find_columns, verify_row
from safeset.sample import Sample

ROWS_PER_SHARD = 1000
HF_METADATA_FILES = ("state.json", "dataset_info.json", "dataset_dict.json")


def is_arrow(path: Path) -> bool:
    return path.suffix.lower() == ".arrow"


def _batches(path: Path) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """The schema and record batches of an Arrow IPC stream (what ``datasets`` writes) or
    file, memory-mapped."""
    source = pa.memory_map(str(path))
    try:
        reader = pa.ipc.open_stream(source)
        return reader.schema, iter(reader)
    except pa.ArrowInvalid:
        source.seek(0)
        file_reader = pa.ipc.open_file(source)
        batches = (file_reader.get_batch(i) for i in range(file_reader.num_record_batches))
        return file_reader.schema, batches


@dataclass(frozen=True)
class ArrowShard(Shard):
    path: str
    first_batch: int
    batches: int
    first_row: int
    root: str
    broken: str | None = None

    def table(self) -> pa.Table:
        if self.broken:
            raise _Unreadable(self.broken)
        try:
            schema, batches = _batches(Path(self.path))
            wanted = []
            for n, batch in enumerate(batches):
                if n >= self.first_batch + self.batches:
                    break
                if n >= self.first_batch:
                    wanted.append(batch)
            return pa.Table.from_batches(wanted, schema)
        except (OSError, pa.ArrowException) as exc:
            raise _Unreadable(f"corrupt Arrow batches from {self.first_batch}: {exc}") from None

    def read(self) -> Iterator[Sample]:
        try:
            table = self.table()
        except _Unreadable as exc:
            yield self.error_sample(str(exc))
            return
        yield from self.samples(table)

    def samples(self, table: pa.Table) -> Iterator[Sample]:
        cols = find_columns(Path(self.path), table.schema)
        return cols.samples(self.path, self.first_row, table, Path(self.root))

    def error_sample(self, reason: str) -> Sample:
        where = "whole file" if self.broken else f"batches from {self.first_batch}"
        return Sample(
            key=f"{Path(self.path).name}#{where}",
            source=self.path,
            location=where,
            index=self.first_row,
            load=lambda: b"",
            error=reason,
        )


class _Unreadable(Exception):
    pass


class ArrowSource(FileSource):
    kind = "arrow"

    def __init__(self, files: list[Path], folder: Path | None = None) -> None:
        self.files = files
        self.folder = folder

    def file_shards(self, path: Path, prefix: str, start: int) -> list[ArrowShard]:
        root = str(self.folder or path.parent)
        try:
            schema, batches = _batches(path)
            find_columns(path, schema)  # a wrong schema stops the job before any work
            sizes = [b.num_rows for b in batches]
        except (OSError, pa.ArrowException) as exc:
            reason = f"not a readable Arrow file: {exc}"
            return [ArrowShard(f"{prefix}-{start:06d}", str(path), 0, 0, 0, root, reason)]
        shards: list[ArrowShard] = []
        first_batch, first_row, rows = 0, 0, 0
        for n, size in enumerate(sizes):
            rows += size
            if rows >= ROWS_PER_SHARD or n == len(sizes) - 1:
                shard_id = f"{prefix}-{start + len(shards):06d}"
                count = n + 1 - first_batch
                shards.append(ArrowShard(shard_id, str(path), first_batch, count, first_row, root))
                first_batch, first_row, rows = n + 1, first_row + rows, 0
        return shards

    def shards(self, prefix: str) -> list[Shard]:
        shards: list[Shard] = []
        for path in self.files:
            shards += self.file_shards(path, prefix, len(shards))
        return shards

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "files": [str(p.resolve()) for p in self.files]}

    def clean(self, decisions: Decisions, out: Path) -> None:
        kept_rows: dict[Path, int] = {}
        written: dict[Path, list[Path]] = {}
        for path in self.files:
            dest = output_path(path, self.folder, out)
            kept_rows[dest.parent] = kept_rows.get(dest.parent, 0) + self._clean_file(
                path, decisions, dest
            )
            written.setdefault(dest.parent, []).append(dest)
        if self.folder is not None:
            self._write_metadata(out, kept_rows, written)

    def _clean_file(self, path: Path, decisions: Decisions, dest: Path) -> int:
        shards = self.file_shards(path, "clean", 0)
        if shards[0].broken:
            sample = shards[0].error_sample(shards[0].broken)
            if decisions.kept(str(path), sample.index, sample.location) is not None:
                decisions.cannot_copy()
            decisions.check_all_seen(str(path), 1)
            return 0
        schema, _ = _batches(path)
        seen = kept = 0
        with atomic_output(dest) as f, pa.ipc.new_stream(f, schema) as writer:
            for shard in shards:
                try:
                    table = shard.table()
                except _Unreadable as exc:
                    seen += 1
                    sample = shard.error_sample(str(exc))
                    if decisions.kept(str(path), sample.index, sample.location) is not None:
                        decisions.cannot_copy()
                    continue
                mask = []
                for sample in shard.samples(table):
                    seen += 1
                    scanned = decisions.kept(str(path), sample.index, sample.location)
                    if scanned is not None:
                        verify_row(sample, scanned, path, decisions)
                    mask.append(scanned is not None)
                kept += sum(mask)
                if any(mask):
                    filtered = table.filter(pa.array(mask, type=pa.bool_()))
                    for batch in filtered.to_batches():
                        writer.write_batch(batch)
        decisions.counts.files += 1
        decisions.check_all_seen(str(path), seen)
        return kept

    def _write_metadata(
        self, out: Path, kept_rows: dict[Path, int], written: dict[Path, list[Path]]
    ) -> None:
        """``save_to_disk``'s JSON files at their places, made to describe the cleaned data."""
        assert self.folder is not None
        for name in HF_METADATA_FILES:
            for source in sorted(self.folder.rglob(name)):
                dest = out / source.relative_to(self.folder)
                try:
                    meta = json.loads(source.read_text())
                except (OSError, ValueError):
                    raise SafesetError(
                        f"{source}: not readable JSON; cannot write it again"
                    ) from None
                if name == "state.json" and isinstance(meta, dict):
                    _set_state(meta, [p for p in written.get(dest.parent, []) if p.exists()])
                if name == "dataset_info.json" and isinstance(meta, dict):
                    _set_split_size(meta, dest.parent, kept_rows)
                with atomic_file(dest, overwrite=False) as f:
                    f.write(json.dumps(meta, indent=2, sort_keys=True).encode())


def _set_state(state: dict[str, Any], arrows: list[Path]) -> None:
    """A new fingerprint for new data; the data files those written (a file that could not be
    read at all has no cleaned copy)."""
    digest = hashlib.sha256(str(state.get("_fingerprint")).encode())
    for arrow in sorted(arrows):
        digest.update(hashlib.sha256(arrow.read_bytes()).digest())
    state["_fingerprint"] = digest.hexdigest()[:16]
    files = state.get("_data_files")
    if isinstance(files, list):
        names = {p.name for p in arrows}
        state["_data_files"] = [
            f for f in files if not isinstance(f, dict) or f.get("filename") in names
        ]


def _set_split_size(info: dict[str, Any], folder: Path, kept_rows: dict[Path, int]) -> None:
    splits = info.get("splits")
    if not isinstance(splits, dict) or folder not in kept_rows:
        return
    state = folder / "state.json"
    split = None
    if state.is_file():
        split = json.loads(state.read_text()).get("_split")
    entry = (
        splits.get(split) if split else (next(iter(splits.values())) if len(splits) == 1 else None)
    )
    if isinstance(entry, dict) and "num_examples" in entry:
        entry["num_examples"] = kept_rows[folder]


class ArrowFormat(Format):
    """``.arrow`` files: a ``save_to_disk`` folder, a datasets cache folder, or the files."""

    name = "arrow"

    @classmethod
    def detect(cls, target: Target) -> Source | None:
        if not target.files or target.subfolders or not all(map(is_arrow, target.files)):
            return None
        return ArrowSource(target.files, folder=target.folder)
