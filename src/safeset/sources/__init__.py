"""Turning SOURCE arguments into sources: a folder, tar shards or Parquet files (globs accepted)."""

from __future__ import annotations

import glob
from pathlib import Path

from safeset.errors import SafesetError
from safeset.sources.base import Shard, Source
from safeset.sources.folder import FolderSource
from safeset.sources.parquet import ParquetSource
from safeset.sources.webdataset import TarSource

__all__ = ["Shard", "Source", "open_source", "open_sources"]

TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz")


def _is_tar(path: Path) -> bool:
    return path.name.lower().endswith(TAR_SUFFIXES)


def _is_parquet(path: Path) -> bool:
    return path.suffix.lower() == ".parquet"


def open_source(arg: str) -> Source:
    """Detect a source's format from what the argument names."""
    path = Path(arg)
    if path.is_dir():
        # img2dataset output folders hold tar shards plus metadata-only Parquet: tars win.
        top = sorted(p for p in path.iterdir() if p.is_file())
        tars = [p for p in top if _is_tar(p)]
        if tars:
            return TarSource(tars, folder=path)
        parquets = [p for p in top if _is_parquet(p)]
        if parquets and not any(p.is_dir() for p in path.iterdir()) and len(parquets) == len(top):
            return ParquetSource(parquets, folder=path)
        return FolderSource(path)
    files = [path] if path.is_file() else [Path(p) for p in sorted(glob.glob(arg))]
    files = [f for f in files if f.is_file()]
    if not files:
        raise SafesetError(f"source not found: {arg}")
    if all(_is_tar(f) for f in files):
        return TarSource(files)
    if all(_is_parquet(f) for f in files):
        return ParquetSource(files)
    odd = next(f for f in files if not (_is_tar(f) or _is_parquet(f)))
    raise SafesetError(
        f"unknown source format: {odd} (expected a folder of images, .tar shards or .parquet files)"
    )


def open_sources(args: list[str]) -> list[Source]:
    return [open_source(a) for a in args]
