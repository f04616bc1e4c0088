"""Parquet files holding image bytes, one shard per row group.

The image column is the one the Hugging Face metadata declares an ``Image``, else a binary
column (``jpg``, ``png``, ``image``...) or Hugging Face image struct ``{bytes, path}`` by name;
further image columns are parts of each row's sample (see formats.table_images). Key = a
``key`` column when present, else the row number.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from safeset.errors import SafesetError
from safeset.formats.base import FileSource, Format, Shard, Source, Target
from safeset.formats.clean import Decisions, atomic_output, output_path
from safeset.formats.table_images import hf_image_columns, holds_images, row_samples
from safeset.sample import Sample

# Rows decoded at a time when reading a row group, and the read-ahead of its column chunks.
STREAM_ROWS = 64
READ_BUFFER = 1 << 20
# A cleaned file's row groups hold at most about this much (smaller ones are copied whole).
WRITE_ROW_GROUP_BYTES = 64 * 1024 * 1024

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
    # Further image columns (name, struct): parts of each row's sample.
    extra: tuple[tuple[str, bool], ...] = ()
    # Columns carried into each sample's metadata (img2dataset's recorded hashes and sizes).
    meta: tuple[str, ...] = ()

    def samples(self, source: str, first_row: int, table: pa.Table, root: Path) -> Iterator[Sample]:
        """The rows of ``table`` (rows ``first_row``... of ``source``) as samples."""
        return row_samples(
            source,
            first_row,
            table,
            (self.image, self.struct),
            self.extra,
            self.key,
            self.caption,
            self.url,
            root,
            self.meta,
        )


def image_columns(schema: pa.Schema) -> Columns | None:
    """The columns of a Parquet file holding image bytes, or None if it holds none: those the
    Hugging Face features declare ``Image`` first, else those named like images."""
    names = {n.lower(): n for n in schema.names}
    declared = hf_image_columns(schema)
    named = [
        names[c]
        for c in IMAGE_COLUMNS
        if c in names and holds_images(schema.field(names[c]).type, names[c]) is not None
    ]
    found = declared or named
    if not found:
        return None
    first, *more = found
    extra = tuple((n, bool(holds_images(schema.field(n).type, n)[1])) for n in more)
    struct = bool(holds_images(schema.field(first).type, first)[1])
    return _columns(names, first, struct=struct, extra=extra)


def find_columns(path: Path, schema: pa.Schema) -> Columns:
    try:
        columns = image_columns(schema)
    except SafesetError as exc:
        raise SafesetError(f"{path}: {exc}") from None
    if columns is not None:
        return columns
    raise SafesetError(
        f"{path}: no image column (a binary column named {', '.join(IMAGE_COLUMNS[:5])} "
        f"or a {{bytes, path}} struct); columns are: {', '.join(schema.names)}"
    )


def _columns(
    names: dict[str, str], image: str, struct: bool, extra: tuple[tuple[str, bool], ...] = ()
) -> Columns:
    caption = next((names[c] for c in CAPTION_COLUMNS if c in names), None)
    meta = tuple(names[c] for c in META_COLUMNS if c in names)
    return Columns(image, struct, names.get("key"), caption, names.get("url"), extra, meta)


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
    # The dataset's folder: where path-only Hugging Face Image cells are read from.
    root: str = ""

    def iter_tables(self, *, all_columns: bool = False) -> Iterator[pa.Table]:
        """This row group in slices of ``STREAM_ROWS`` rows (only the columns scanning needs
        unless ``all_columns``): a row group of hundreds of megabytes is never whole in memory.
        UnreadablePart where the file or the rest of the row group cannot be decoded."""
        if self.broken:
            raise UnreadablePart(self.broken)
        try:
            # Page by page: pyarrow's default (pre_buffer) reads each column chunk whole first.
            pf = pq.ParquetFile(self.path, buffer_size=READ_BUFFER, pre_buffer=False)
            columns = None
            if not all_columns:
                cols = find_columns(Path(self.path), pf.schema_arrow)
                wanted = [c for c in (cols.image, cols.key, cols.caption, cols.url) if c]
                wanted += [name for name, _ in cols.extra]
                wanted += cols.meta
                columns = list(dict.fromkeys(wanted))
            batches = pf.iter_batches(
                batch_size=STREAM_ROWS, row_groups=[self.row_group], columns=columns
            )
            for batch in batches:
                yield pa.Table.from_batches([batch])
        except (OSError, pa.ArrowException) as exc:
            raise UnreadablePart(f"corrupt Parquet row group {self.row_group}: {exc}") from None

    def read(self) -> Iterator[Sample]:
        offset = 0
        try:
            for table in self.iter_tables():
                yield from self.samples(table, offset)
                offset += table.num_rows
        except UnreadablePart as exc:
            yield self.error_sample(str(exc), offset)

    def error_sample(self, reason: str, offset: int = 0) -> Sample:
        """One row standing for a part that could not be read (a whole file, a row group, or
        the rest of one from ``offset``), so it is never silently lost."""
        where = "whole file" if self.broken else f"row group {self.row_group}"
        if offset:
            where += f" from row {self.first_row + offset}"
        return Sample(
            key=f"{Path(self.path).name}#{where}",
            source=self.path,
            location=where,
            index=self.first_row + offset,
            load=_constant(b""),
            error=reason,
        )

    def samples(self, table: pa.Table, offset: int = 0) -> Iterator[Sample]:
        """The samples of a slice of this row group starting ``offset`` rows into it, from a
        table holding (at least) its known columns."""
        root = Path(self.root or Path(self.path).parent)
        yield from file_columns(self.path).samples(self.path, self.first_row + offset, table, root)


@lru_cache(maxsize=256)
def file_columns(path: str) -> Columns:
    """A file's columns, from its own schema (a slice's table may have lost the HF metadata);
    read once per file, not once per slice."""
    return find_columns(Path(path), pq.read_schema(path))


def _constant(blob: bytes):
    return lambda: blob


class ParquetSource(FileSource):
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

    def _file_shards(self, path: Path, next_id: Callable[[], str]) -> list[ParquetShard]:
        root = str(self.folder or path.parent)
        try:
            pf = pq.ParquetFile(path)
        except (OSError, pa.ArrowException) as exc:
            reason = f"not a readable Parquet file: {exc}"
            return [ParquetShard(next_id(), str(path), -1, 0, broken=reason, root=root)]
        find_columns(path, pf.schema_arrow)  # a wrong schema stops the job before any work
        shards, first = [], 0
        for rg in range(pf.num_row_groups):
            shards.append(ParquetShard(next_id(), str(path), rg, first, root=root))
            first += pf.metadata.row_group(rg).num_rows
        return shards

    def shards_of(self, path: Path) -> list[ParquetShard]:
        """One file's shards (ids unused: for sinks, which work file by file)."""
        return self._file_shards(path, lambda: "clean")

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "files": [str(p.resolve()) for p in self.files]}

    def clean(self, decisions: Decisions, out: Path) -> None:
        """Each file again with its schema (and metadata), the rows left out removed, at its
        place in the folder (split folders keep their splits); img2dataset's ``_stats.json``
        beside each file made to agree with it (formats.img2dataset)."""
        from safeset.formats.img2dataset import clean_parquet_stats

        for path in self.files:
            dest = output_path(path, self.folder, out)
            clean_parquet(path, self.shards_of(path), decisions, dest)
            clean_parquet_stats(path, dest, decisions)


def is_parquet(path: Path) -> bool:
    return path.suffix.lower() == ".parquet"


def parquet_files(target: Target) -> list[Path] | None:
    """The target's Parquet files if it is only Parquet files (or a flat folder of them; in a
    folder, the ``NNNNN_stats.json`` img2dataset writes beside each shard do not count)."""
    files = target.files
    if target.folder is not None:
        files = [f for f in files if not f.name.endswith("_stats.json")]
    return target.flat_files(is_parquet, files)


def read_schema(path: Path) -> pa.Schema | None:
    try:
        return pq.read_schema(path)
    except (OSError, pa.ArrowException):
        return None  # unreadable: ParquetSource turns it into an error row


def _holds_image_bytes(path: Path) -> bool:
    schema = read_schema(path)
    try:
        return schema is None or image_columns(schema) is not None
    except SafesetError as exc:
        raise SafesetError(f"{path}: {exc}") from None


class ParquetFormat(Format):
    """Parquet files with image bytes; Parquet without them is a URL table (see urls)."""

    name = "parquet"

    @classmethod
    def detect(cls, target: Target) -> Source | None:
        files = parquet_files(target)
        if files is None:
            return None
        with_bytes = [_holds_image_bytes(f) for f in files]
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
            # Kept rows are written a row group at a time, a large one split at
            # WRITE_ROW_GROUP_BYTES: memory stays bounded and ordinary files keep their layout.
            kept: list[pa.Table] = []
            offset = 0
            try:
                for table in shard.iter_tables(all_columns=True):
                    mask = []
                    for sample in shard.samples(table, offset):
                        seen += 1
                        scanned = decisions.kept(str(path), sample.index, sample.location)
                        if scanned is not None:
                            verify_row(sample, scanned, path, decisions)
                        mask.append(scanned is not None)
                    offset += table.num_rows
                    if any(mask):
                        kept.append(table.filter(pa.array(mask, type=pa.bool_())))
                    if sum(t.nbytes for t in kept) >= WRITE_ROW_GROUP_BYTES:
                        w.write_table(pa.concat_tables(kept))
                        kept = []
            except UnreadablePart as exc:
                seen += 1
                _refuse_if_kept(shard, decisions, shard.error_sample(str(exc), offset))
            if kept:
                w.write_table(pa.concat_tables(kept))
    decisions.counts.files += 1
    decisions.check_all_seen(str(path), seen)


def verify_row(sample: Sample, scanned, path: Path, decisions: Decisions) -> None:
    """The row's image (and further images) are those scanned. A path-only cell that could
    not be read when scanned either (a path leaving the folder: never read) has nothing to
    check; its row, which holds no image bytes, is copied like a null image's."""
    try:
        files = [(sample.location, sample.load())]
        files += [(part.name, part.load()) for part in sample.parts]
    except OSError:
        if scanned.md5:
            raise SafesetError(
                f"{path}: cannot read the image of {sample.location} any more: scan it again"
            ) from None
        return
    decisions.verify(scanned, str(path), files)


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
