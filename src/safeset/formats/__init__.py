"""Dataset formats, registered in the order they are tried, and SOURCE arguments opened with
the first that recognises them.

A SOURCE is a folder, a file, a glob or a brace pattern (``part-{00000..00009}.tar``, as
webdataset expands it). Each format's ``detect`` is shown the argument (its files, and whether
it names a folder) and returns its source or None. A folder is first judged by its whole tree
(formats.layout): its dataset files at any depth are shown to the formats as one target; then
its top-level files; the folder format, which takes a folder of images, comes last, and a
folder holding neither images nor dataset files is refused. Third-party formats join through the
``safeset.formats`` entry point group (a ``Format`` subclass) or ``register``; either way they
are tried before the folder fallback.
"""

from __future__ import annotations

import glob
from dataclasses import replace
from importlib.metadata import entry_points
from pathlib import Path

from safeset.errors import SafesetError
from safeset.formats.arrow import ArrowFormat
from safeset.formats.base import Format, Shard, Source, SourceOptions, Target
from safeset.formats.folder import FolderFormat
from safeset.formats.layout import survey
from safeset.formats.parquet import ParquetFormat
from safeset.formats.patterns import expand_pattern
from safeset.formats.url_list import UrlListFormat
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

_FORMATS: list[type[Format]] = [
    WebDatasetFormat,
    ParquetFormat,
    ArrowFormat,
    UrlTableFormat,
    UrlListFormat,
]
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
    if target.folder is not None:
        return _open_folder(target)
    for fmt in formats():
        source = fmt.detect(target)
        if source is not None:
            return source
    raise SafesetError(
        f"unknown source format: {target.files[0] if target.files else arg} (expected a folder "
        "of images, .tar shards, .parquet or .arrow files, or .csv/.tsv/.txt url lists, one "
        "kind per SOURCE)"
    )


def _open_folder(target: Target) -> Source:
    """A folder by what its whole tree holds (see formats.layout): its dataset files at any
    depth (split folders, Hub snapshots, img2dataset output), else its top-level files as each
    format knows them, else images; a folder of none of these is refused."""
    assert target.folder is not None
    found = survey(target.folder)
    files = found.dataset_files
    if files and found.images:
        raise SafesetError(
            f"{target.folder} holds both image files and dataset files ({files[0].name}): "
            "pass them as separate SOURCE arguments"
        )
    *registered, fallback = formats()
    if files:
        tree = replace(target, files=files, tree=True)
        for fmt in registered:
            if (source := fmt.detect(tree)) is not None:
                return source
    for fmt in registered:
        if (source := fmt.detect(target)) is not None:
            return source
    if not found.images:
        raise found.refuse()
    source = fallback.detect(target)
    assert source is not None
    return source


def open_sources(args: list[str], options: SourceOptions | None = None) -> list[Source]:
    return [open_source(a, options) for a in args]


def _target(arg: str, options: SourceOptions) -> Target:
    path = Path(arg)
    if path.is_dir():
        return Target(arg, sorted(p for p in path.iterdir() if p.is_file()), path, options)
    if path.is_file():
        files = [path]
    elif (expanded := expand_pattern(arg)) is not None:
        files = expanded  # webdataset's brace notation, part-{00000..00009}.tar, in its order
    else:
        files = [Path(p) for p in sorted(glob.glob(arg))]
    files = [f for f in files if f.is_file()]
    if not files:
        raise SafesetError(f"source not found: {arg}")
    return Target(arg, files, None, options)
