"""Dataset formats, registered in the order they are tried, and SOURCE arguments opened with
the first that recognises them.

A SOURCE is a folder, a file or a glob. Each format's ``detect`` is shown the argument (its
files, and whether it names a folder) and returns its source or None; the folder format, which
takes any folder as one of images, comes last. Third-party formats join through the
``safeset.formats`` entry point group (a ``Format`` subclass) or ``register``; either way they
are tried before the folder fallback.
"""

from __future__ import annotations

import glob
from importlib.metadata import entry_points
from pathlib import Path

from safeset.errors import SafesetError
from safeset.formats.base import Format, Shard, Source, SourceOptions, Target
from safeset.formats.folder import FolderFormat
from safeset.formats.parquet import ParquetFormat
from safeset.formats.urls import UrlTableFormat
from safeset.formats.webdataset import WebDatasetFormat

__all__ = [
    "Format",
    "Shard",
    "Source",
    "SourceOptions",
    "Target",
    "formats",
    "open_source",
    "open_sources",
    "register",
]

_FORMATS: list[type[Format]] = [WebDatasetFormat, ParquetFormat, UrlTableFormat]
_FALLBACK: type[Format] = FolderFormat
_plugins_loaded = False


def register(fmt: type[Format]) -> type[Format]:
    """Try ``fmt`` after the formats registered before it, before the folder fallback."""
    if fmt not in _FORMATS:
        _FORMATS.append(fmt)
    return fmt


def formats() -> list[type[Format]]:
    """Every registered format, in the order they are tried."""
    global _plugins_loaded
    if not _plugins_loaded:
        _plugins_loaded = True
        for entry in entry_points(group="safeset.formats"):
            register(entry.load())
    return [*_FORMATS, _FALLBACK]


def open_source(arg: str | Path, options: SourceOptions | None = None) -> Source:
    """The source a SOURCE argument names, in the first format that recognises it."""
    target = _target(str(arg), options or SourceOptions())
    for fmt in formats():
        source = fmt.detect(target)
        if source is not None:
            return source
    raise SafesetError(
        f"unknown source format: {target.files[0] if target.files else arg} (expected a folder "
        "of images, .tar shards, .parquet files or .csv/.tsv url tables, one kind per SOURCE)"
    )


def open_sources(args: list[str], options: SourceOptions | None = None) -> list[Source]:
    return [open_source(a, options) for a in args]


def _target(arg: str, options: SourceOptions) -> Target:
    path = Path(arg)
    if path.is_dir():
        return Target(arg, sorted(p for p in path.iterdir() if p.is_file()), path, options)
    files = [path] if path.is_file() else [Path(p) for p in sorted(glob.glob(arg))]
    files = [f for f in files if f.is_file()]
    if not files:
        raise SafesetError(f"source not found: {arg}")
    return Target(arg, files, None, options)
