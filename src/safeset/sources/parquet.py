"""Parquet files holding image bytes, one shard per row group.

The image column is a binary column (``jpg``, ``png``, ``image``...) or the Hugging Face image
struct ``{bytes, path}``. Key = a ``key`` column when present, else the row number.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from safeset.errors import SafesetError
from safeset.sample import Sample
from safeset.sources.base import Shard, Source

IMAGE_COLUMNS = ("jpg", "jpeg", "png", "webp", "image", "img", "image_bytes", "bytes")
CAPTION_COLUMNS = ("caption", "text", "txt")


@dataclass(frozen=True)
class Columns:
    image: str
    struct: bool  # Hugging Face {bytes, path} struct rather than plain binary
    key: str | None
    caption: str | None
    url: str | None


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
    return Columns(image, struct, names.get("key"), caption, names.get("url"))


def open_parquet(path: Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        raise SafesetError(f"{path}: not a readable Parquet file: {exc}") from None


@dataclass(frozen=True)
class ParquetShard(Shard):
    path: str
    row_group: int
    first_row: int

    def read(self) -> Iterator[Sample]:
        pf = open_parquet(Path(self.path))
        cols = find_columns(Path(self.path), pf.schema_arrow)
        wanted = [c for c in (cols.image, cols.key, cols.caption, cols.url) if c]
        yield from self.samples(
            pf.read_row_group(self.row_group, columns=list(dict.fromkeys(wanted)))
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

    def __init__(self, files: list[Path]) -> None:
        self.files = files

    def shards(self, prefix: str) -> list[Shard]:
        shards: list[Shard] = []
        for path in self.files:
            pf = open_parquet(path)
            find_columns(path, pf.schema_arrow)  # fail before any work if there is no image
            first = 0
            for rg in range(pf.num_row_groups):
                shards.append(ParquetShard(f"{prefix}-{len(shards):06d}", str(path), rg, first))
                first += pf.metadata.row_group(rg).num_rows
        return shards

    def shards_of(self, path: Path) -> list[ParquetShard]:
        return [
            s for s in self.shards("clean") if isinstance(s, ParquetShard) and s.path == str(path)
        ]

    def roots(self) -> list[Path]:
        return sorted({p.parent for p in self.files})

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "files": [str(p.resolve()) for p in self.files]}
