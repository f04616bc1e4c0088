"""Cleaned copy of a folder source: the same relative paths, kept files and their sidecars."""

from __future__ import annotations

from pathlib import Path

from safeset.sinks.base import Decisions, atomic_output
from safeset.sources.folder import SIDECAR_EXTENSIONS, FolderSource


def clean_folder(source: FolderSource, decisions: Decisions, out: Path) -> None:
    root = str(source.root)
    for index, rel in enumerate(source.files):
        path = source.root / rel
        data = path.read_bytes()
        if not decisions.keep(root, index, rel, data):
            continue
        _write(out / rel, data, decisions)
        for ext in SIDECAR_EXTENSIONS:
            sidecar = path.with_suffix(f".{ext}")
            if sidecar != path and sidecar.is_file():
                _write(out / Path(rel).with_suffix(f".{ext}"), sidecar.read_bytes(), decisions)
    decisions.check_all_seen(root, len(source.files))


def _write(path: Path, data: bytes, decisions: Decisions) -> None:
    with atomic_output(path) as f:
        f.write(data)
    decisions.counts.files += 1
