"""Turning SOURCE arguments into sources: a folder, tar shards, Parquet files or URL tables.

Globs are accepted. A Parquet file with an image-bytes column is read as images; one without
image bytes but with a URL column is a URL table, as is any .csv or .tsv file.
"""

from __future__ import annotations

import glob
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from safeset.errors import SafesetError
from safeset.sources.base import Shard, Source
from safeset.sources.folder import FolderSource
from safeset.sources.parquet import ParquetSource, image_columns
from safeset.sources.url_table import is_delimited
from safeset.sources.urls import UrlOptions, UrlSource
from safeset.sources.webdataset import TAR_SUFFIXES, TarSource

__all__ = ["Shard", "Source", "UrlOptions", "open_source", "open_sources"]


def _is_tar(path: Path) -> bool:
    return path.name.lower().endswith(TAR_SUFFIXES)


def _is_parquet(path: Path) -> bool:
    return path.suffix.lower() == ".parquet"


def open_source(arg: str, urls: UrlOptions | None = None) -> Source:
    """Detect a source's format from what the argument names."""
    urls = urls or UrlOptions()
    path = Path(arg)
    if path.is_dir():
        # img2dataset output folders hold tar shards plus metadata-only Parquet: tars win.
        top = sorted(p for p in path.iterdir() if p.is_file())
        tars = [p for p in top if _is_tar(p)]
        if tars:
            return TarSource(tars, folder=path)
        if top and not any(p.is_dir() for p in path.iterdir()):
            if all(_is_parquet(p) for p in top):
                return _parquet_source(top, urls, folder=path)
            if all(is_delimited(p) for p in top):
                return UrlSource(top, urls, folder=path)
        return FolderSource(path)
    files = [path] if path.is_file() else [Path(p) for p in sorted(glob.glob(arg))]
    files = [f for f in files if f.is_file()]
    if not files:
        raise SafesetError(f"source not found: {arg}")
    if all(_is_tar(f) for f in files):
        return TarSource(files)
    if all(_is_parquet(f) for f in files):
        return _parquet_source(files, urls)
    if all(is_delimited(f) for f in files):
        return UrlSource(files, urls)
    odd = next(f for f in files if not (_is_tar(f) or _is_parquet(f) or is_delimited(f)))
    raise SafesetError(
        f"unknown source format: {odd} (expected a folder of images, .tar shards, .parquet "
        "files or .csv/.tsv url tables, one kind per SOURCE)"
    )


def _schema(path: Path) -> pa.Schema | None:
    try:
        return pq.read_schema(path)
    except (OSError, pa.ArrowException):
        return None  # unreadable: ParquetSource turns it into an error row


def _parquet_source(files: list[Path], urls: UrlOptions, folder: Path | None = None) -> Source:
    """Parquet with image bytes, or a URL table: a file with image bytes is never a URL table."""
    schemas = [_schema(f) for f in files]
    with_bytes = [s is None or image_columns(s) is not None for s in schemas]
    if all(with_bytes):
        return ParquetSource(files, folder=folder)
    if not any(with_bytes):
        for f, schema in zip(files, schemas, strict=True):
            assert schema is not None
            if urls.url_col.lower() not in {n.lower() for n in schema.names}:
                raise SafesetError(
                    f"{f}: neither image bytes (a binary column such as jpg, png, image) nor a "
                    f"url column {urls.url_col!r} (--url-col); columns are: "
                    f"{', '.join(schema.names)}"
                )
        return UrlSource(files, urls, folder=folder)
    raise SafesetError(
        f"{files[with_bytes.index(False)]} holds no image bytes but "
        f"{files[with_bytes.index(True)]} does: pass URL tables and image Parquet files as "
        "separate SOURCE arguments"
    )


def open_sources(args: list[str], urls: UrlOptions | None = None) -> list[Source]:
    return [open_source(a, urls) for a in args]
