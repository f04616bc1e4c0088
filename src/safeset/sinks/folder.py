"""Cleaned copy of a folder source: the same relative paths, kept files and their sidecars."""

from __future__ import annotations

from pathlib import Path

from safeset.errors import SafesetError
from safeset.sinks.base import Decisions, atomic_output
from safeset.sources.folder import SIDECAR_EXTENSIONS, FolderSource


def clean_folder(source: FolderSource, decisions: Decisions, out: Path) -> None:
    root = str(source.root)
    seen = 0
    for shard in source.shards("clean"):
        for sample in shard.read():
            seen += 1
            verdict = decisions.kept(root, sample.index, sample.location)
            if verdict is None:
                continue
            try:
                data = sample.load()
            except OSError as exc:
                raise SafesetError(f"cannot copy {source.root / sample.location}: {exc}") from None
            decisions.verify(verdict, root, data)
            _write(out / sample.location, data, decisions)
            for ext in SIDECAR_EXTENSIONS:
                sidecar = (source.root / sample.location).with_suffix(f".{ext}")
                if sidecar.name != Path(sample.location).name and sidecar.is_file():
                    rel = Path(sample.location).with_suffix(f".{ext}")
                    _write(out / rel, sidecar.read_bytes(), decisions)
    decisions.check_all_seen(root, seen)


def _write(path: Path, data: bytes, decisions: Decisions) -> None:
    with atomic_output(path) as f:
        f.write(data)
    decisions.counts.files += 1
