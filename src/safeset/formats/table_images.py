"""Images in table rows (Parquet row groups, Arrow record batches): which columns hold them,
and each row as a sample.

The image column is the one the schema's Hugging Face metadata (``huggingface`` key: the
dataset's ``features``) declares an ``Image``, whatever its name; without that metadata, a
binary or ``{bytes, path}`` column with an image-like name. Every further image column is a
part of each row's sample (a segmentation mask beside a photo): hashed and matched like the
first, and named in a match by its column.

A Hugging Face ``Image`` cell may hold a path and no bytes (``to_parquet`` of a dataset built
from files writes those). The file is read relative to the dataset's folder, and only from
inside it: a path leaving the folder (absolute elsewhere, ``..``, a link out) makes the row an
error row, never a read (invariant 7).
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import pyarrow as pa

from safeset.errors import SafesetError
from safeset.sample import Part, Sample

HF_METADATA_KEY = b"huggingface"


def hf_features(schema: pa.Schema) -> dict[str, Any]:
    """The ``features`` a Hugging Face writer (``to_parquet``, ``save_to_disk``, the cache)
    recorded in the schema's metadata; empty when there are none or they do not parse."""
    raw = (schema.metadata or {}).get(HF_METADATA_KEY)
    if not raw:
        return {}
    try:
        meta = json.loads(raw)
    except ValueError:
        return {}
    info = meta.get("info") if isinstance(meta, dict) else None
    features = info.get("features") if isinstance(info, dict) else None
    return features if isinstance(features, dict) else {}


def holds_images(typ: pa.DataType, name: str) -> tuple[bool, bool] | None:
    """(True, is_struct) if a column of this type can hold image bytes, else None.

    A ``{bytes, path}`` struct whose ``bytes`` are not binary (a string, say) cannot hold an
    image's bytes faithfully: SafesetError, one line, before any work."""
    if pa.types.is_binary(typ) or pa.types.is_large_binary(typ):
        return True, False
    if pa.types.is_struct(typ) and typ.get_field_index("bytes") >= 0:
        inner = typ.field(typ.get_field_index("bytes")).type
        if not (pa.types.is_binary(inner) or pa.types.is_large_binary(inner)):
            raise SafesetError(
                f"image column {name!r} is a struct whose 'bytes' field holds {inner}, not "
                "binary: write the image bytes as binary (Hugging Face Image() does)"
            )
        return True, True
    return None


def hf_image_columns(schema: pa.Schema) -> list[str]:
    """Columns the HF features declare ``Image``, in schema order, that can hold bytes."""
    declared = {
        name
        for name, feature in hf_features(schema).items()
        if isinstance(feature, dict) and feature.get("_type") == "Image"
    }
    return [
        n
        for n in schema.names
        if n in declared and holds_images(schema.field(n).type, n) is not None
    ]


def contained_path_reader(root: Path, cell_path: str) -> Callable[[], bytes]:
    """A reader of an ``Image`` cell's path, relative to ``root`` (an absolute path must lie
    inside it), that refuses anything outside ``root`` and anything but a regular file. The
    path is judged as written before the file system is asked anything about it."""

    def load() -> bytes:
        written = PurePosixPath(cell_path.replace("\\", "/"))
        real_root = Path(os.path.realpath(root))
        if written.is_absolute():
            candidate = Path(os.path.normpath(written))
            if not (candidate.is_relative_to(root) or candidate.is_relative_to(real_root)):
                raise OSError(f"image path leaves the dataset folder: {cell_path}")
        else:
            if ".." in Path(os.path.normpath(written)).parts:
                raise OSError(f"image path leaves the dataset folder: {cell_path}")
            candidate = root / written
        real = Path(os.path.realpath(candidate))
        if not real.is_relative_to(real_root):
            raise OSError(f"image path links outside the dataset folder: {cell_path}")
        if not real.exists():
            raise OSError(f"image file not found in the dataset folder: {cell_path}")
        if not stat.S_ISREG(real.stat().st_mode):
            raise OSError(f"not a regular file: {cell_path}")
        return real.read_bytes()

    return load


def _constant(blob: bytes) -> Callable[[], bytes]:
    return lambda: blob


def _cells(table: pa.Table, column: str, struct: bool) -> tuple[list[Any], list[Any] | None]:
    """A column's bytes, and for HF structs its paths."""
    col = table.column(column)
    if not struct:
        return col.to_pylist(), None
    chunks = col.chunks
    data = pa.chunked_array([c.field("bytes") for c in chunks], chunks[0].type.field("bytes").type)
    paths = None
    if col.type.get_field_index("path") >= 0:
        paths = pa.chunked_array([c.field("path") for c in chunks], pa.string()).to_pylist()
    return data.to_pylist(), paths


def _strings(table: pa.Table, column: str | None) -> list[Any] | None:
    if column is None:
        return None
    return [None if v is None else str(v) for v in table.column(column).to_pylist()]


def _reader(blob: bytes | None, path: str | None, root: Path | None) -> Callable[[], bytes] | None:
    if blob is not None:
        return _constant(blob)
    if path and root is not None:
        return contained_path_reader(root, path)
    return None


def row_samples(
    source: str,
    first_row: int,
    table: pa.Table,
    image: tuple[str, bool],
    extra: Sequence[tuple[str, bool]],
    key: str | None,
    caption: str | None,
    url: str | None,
    root: Path | None,
    meta: Sequence[str] = (),
) -> Iterator[Sample]:
    """Each row of ``table`` (rows ``first_row``... of ``source``) as a sample: its first image
    column is the image, every further image column a part named after the column, the
    ``meta`` columns its metadata (keyed by lowercase name)."""
    if table.num_rows == 0:
        return
    meta_values = {c.lower(): table.column(c).to_pylist() for c in meta}
    images, paths = _cells(table, *image)
    extras = [(name, *_cells(table, name, struct)) for name, struct in extra]
    keys, captions, urls = (_strings(table, c) for c in (key, caption, url))
    for offset, blob in enumerate(images):
        row = first_row + offset
        load = _reader(blob, paths[offset] if paths else None, root)
        parts = []
        for name, blobs, cell_paths in extras:
            part = _reader(blobs[offset], cell_paths[offset] if cell_paths else None, root)
            if part is not None:
                parts.append(Part(name, part))
        yield Sample(
            key=keys[offset] if keys and keys[offset] is not None else str(row),
            source=source,
            location=f"row {row}",
            index=row,
            load=load or _constant(b""),
            caption=captions[offset] if captions else None,
            url=urls[offset] if urls else None,
            meta={name: values[offset] for name, values in meta_values.items()},
            error="image is null" if load is None else None,
            parts=tuple(parts),
        )
