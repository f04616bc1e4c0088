"""Parquet files holding image bytes, one shard per row group.

The image column is a binary column (``jpg``, ``png``, ``image``...) or the Hugging Face image
struct ``{bytes, path}``. Key = a ``key`` column when present, else the row number.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from safeset.errors import SafesetError
from safeset.formats.base import Format, Shard, Source, Target
from safeset.formats.clean import Decisions, atomic_output
from safeset.sample import Sample

IMAGE_COLUMNS = ("jpg", "jpeg", "png", "webp", "image", "img", "image_bytes", "bytes")
CAPTION_COLUMNS = ("caption", "text", "txt")
# Carried into Sample.meta where present: img2dataset's recorded hash of the original file and
# its original size (see signals.recorded and signals.unpad).
META_COLUMNS = ("md5", "sha1", "sha256", "sha512", "original_width", "original_height")


@dataclass(frozen=True)
class Columns:
    image: str
    struct: bool  # Hugging Face {bytes, path} struct rather than plain binary
    key: str | None
    caption: str | None
    url: str | None
    meta: tuple[str, ...] = ()


def image_columns(schema: pa.Schema) -> Columns | None:
    """The columns of a Parquet file holding image bytes, or None if it holds none."""
    names = {n.lower(): n for n in schema.names}
    for candidate in IMAGE_COLUMNS:
        name = names.get(candidate)
        if name is None:
            continue
        typ = schema.field(name).type
        if pa.types.is_binary(typ) or pa.types.is_large_binary(typ):
            return _columns(names, name, struct=False)
        if pa.types.is_struct(typ) and typ.get_field_index("bytes") >= 0:
            return _columns(names, name, struct=True)
    return None


def find_columns(path: Path, schema: pa.Schema) -> Columns:
    columns = image_columns(schema)
    if columns is not None:
        return columns
    raise SafesetError(
        f"{path}: no image column (a binary column named {', '.join(IMAGE_COLUMNS[:5])} "
        f"or a {{bytes, path}} struct); columns are: {', '.join(schema.names)}"
    )


def _columns(names: dict[str, str], image: str, struct: bool) -> Columns:
    caption = next((names[c] for c in CAPTION_COLUMNS if c in names), None)
    meta = tuple(names[c] for c in META_COLUMNS if c in names)
    return Columns(image, struct, names.get("key"), caption, names.get("url"), meta)


def open_parquet(path: Path) -> pq.ParquetFile:
    """A Parquet file that must be readable for the job to proceed (a URL table, say)."""
    try:
        return pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        raise SafesetError(f"{path}: not a readable Parquet file: {exc}") from None


class UnreadablePart(Exception):
    """A Parquet file or row group that cannot be decoded; the message is the recorded reason."""


@dataclass(frozen=True)
class ParquetShard(Shard):
    path: str
    row_group: int
    first_row: int
    # Set when the file itself cannot be opened: the shard then stands for the whole file.
    broken: str | None = None

    def load_table(self, *, all_columns: bool = False) -> pa.Table:
        """This row group's table (only the columns scanning needs unless ``all_columns``)."""
        if self.broken:
            raise UnreadablePart(self.broken)
        try:
            pf = pq.ParquetFile(self.path)
            columns = None
            if not all_columns:
                cols = find_columns(Path(self.path), pf.schema_arrow)
                wanted = [c for c in (cols.image, cols.key, cols.caption, cols.url) if c]
                wanted += cols.meta
                columns = list(dict.fromkeys(wanted))
            return pf.read_row_group(self.row_group, columns=columns)
        except (OSError, pa.ArrowException) as exc:
            raise UnreadablePart(f"corrupt Parquet row group {self.row_group}: {exc}") from None

    def read(self) -> Iterator[Sample]:
        try:
            table = self.load_table()
        except UnreadablePart as exc:
            yield self.error_sample(str(exc))
            return
        yield from self.samples(table)

    def error_sample(self, reason: str) -> Sample:
        """One row standing for a part that could not be read, so it is never silently lost."""
        where = "whole file" if self.broken else f"row group {self.row_group}"
        return Sample(
            key=f"{Path(self.path).name}#{where}",
            source=self.path,
            location=where,
            index=self.first_row,
            load=_constant(b""),
            error=reason,
        )

    def samples(self, table: pa.Table) -> Iterator[Sample]:
        """The samples of this row group, from a table holding (at least) its known columns."""
        cols = find_columns(Path(self.path), table.schema)
        images = table.column(cols.image)
        if cols.struct:
            images = pa.chunked_array([c.field("bytes") for c in images.chunks], pa.binary())
        keys = _strings(table, cols.key)
        captions = _strings(table, cols.caption)
        urls = _strings(table, cols.url)
        meta = {c.lower(): table.column(c).to_pylist() for c in cols.meta}
        for offset, blob in enumerate(images.to_pylist()):
            row = self.first_row + offset
            key = keys[offset] if keys and keys[offset] is not None else str(row)
            yield Sample(
                key=key,
                source=self.path,
                location=f"row {row}",
                index=row,
                load=_constant(blob or b""),
                caption=captions[offset] if captions else None,
                url=urls[offset] if urls else None,
                meta={name: values[offset] for name, values in meta.items()},
                error="image is null" if blob is None else None,
            )


def _strings(table: pa.Table, column: str | None) -> list[Any] | None:
    if column is None:
        return None
    return [None if v is None else str(v) for v in table.column(column).to_pylist()]


def _constant(blob: bytes):
    return lambda: blob


class ParquetSource(Source):
    kind = "parquet"

    def __init__(self, files: list[Path], folder: Path | None = None) -> None:
        self.files = files
        # The folder the user named, if any: all of it then counts as the source.
        self.folder = folder

    def shards(self, prefix: str) -> list[Shard]:
        numbers = itertools.count()
        return [
            shard
            for path in self.files
            for shard in self._file_shards(path, lambda: f"{prefix}-{next(numbers):06d}")
        ]

    @staticmethod
    def _file_shards(path: Path, next_id: Callable[[], str]) -> list[ParquetShard]:
        try:
            pf = pq.ParquetFile(path)
        except (OSError, pa.ArrowException) as exc:
            reason = f"not a readable Parquet file: {exc}"
            return [ParquetShard(next_id(), str(path), -1, 0, broken=reason)]
        find_columns(path, pf.schema_arrow)  # a wrong schema stops the job before any work
        shards, first = [], 0
        for rg in range(pf.num_row_groups):
            shards.append(ParquetShard(next_id(), str(path), rg, first))
            first += pf.metadata.row_group(rg).num_rows
        return shards

    def shards_of(self, path: Path) -> list[ParquetShard]:
        """One file's shards (ids unused: for sinks, which work file by file)."""
        return self._file_shards(path, lambda: "clean")

    def roots(self) -> list[Path]:
        return [self.folder] if self.folder else list(self.files)

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "files": [str(p.resolve()) for p in self.files]}

    def clean(self, decisions: Decisions, out: Path) -> None:
        """Each file again with its schema (and metadata), the rows left out removed."""
        for path in self.files:
            clean_parquet(path, self.shards_of(path), decisions, out / path.name)


def is_parquet(path: Path) -> bool:
    return path.suffix.lower() == ".parquet"


def parquet_files(target: Target) -> list[Path] | None:
    """The target's Parquet files if it is only Parquet files (or a flat folder of them; in a
    folder, the ``NNNNN_stats.json`` img2dataset writes beside each shard do not count)."""
    files = target.files
    if target.folder is not None:
        files = [f for f in files if not f.name.endswith("_stats.json")]
    if not files or target.subfolders or not all(is_parquet(f) for f in files):
        return None
    return files


def read_schema(path: Path) -> pa.Schema | None:
    try:
        return pq.read_schema(path)
    except (OSError, pa.ArrowException):
        return None  # unreadable: ParquetSource turns it into an error row


class ParquetFormat(Format):
    """Parquet files with image bytes; Parquet without them is a URL table (see urls)."""

    name = "parquet"

    @classmethod
    def detect(cls, target: Target) -> Source | None:
        files = parquet_files(target)
        if files is None:
            return None
        with_bytes = [(s := read_schema(f)) is None or image_columns(s) is not None for f in files]
        if all(with_bytes):
            return ParquetSource(files, folder=target.folder)
        if any(with_bytes):
            raise SafesetError(
                f"{files[with_bytes.index(False)]} holds no image bytes but "
                f"{files[with_bytes.index(True)]} does: pass URL tables and image Parquet files "
                "as separate SOURCE arguments"
            )
        return None


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
                scanned = decisions.kept(str(path), sample.index, sample.location)
                if scanned is not None:
                    decisions.verify(scanned, str(path), [(sample.location, sample.load())])
                mask.append(scanned is not None)
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
