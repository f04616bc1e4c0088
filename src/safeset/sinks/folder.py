"""Cleaned copy of a folder source: the same relative paths, kept files and their sidecars."""

from __future__ import annotations

from pathlib import Path

from safeset.errors import SafesetError
from safeset.sinks.base import Decisions, atomic_output
from safeset.sources.folder import FolderSource


def clean_folder(source: FolderSource, decisions: Decisions, out: Path) -> None:
    root = str(source.root)
    seen = 0
    # Images sharing a stem (p.jpg, p.png) share its sidecars (p.txt): written once.
    written: set[str] = set()
    for shard in source.shards("clean"):
        for sample in shard.read():
            seen += 1
            verdict = decisions.kept(root, sample.index, sample.location)
            if verdict is None:
                continue
            try:
                files = [(sample.location, sample.load())]
                files += [(part.name, part.load()) for part in sample.parts]
            except OSError:
                # Unreadable when scanned too (else the md5 check below refuses it): a review
                # row that --keep-review cannot copy.
                if not verdict.md5:
                    decisions.cannot_copy()
                    continue
                raise SafesetError(f"cannot copy {sample.location} from {root}") from None
            decisions.verify(verdict, root, files)
            for rel, data in files:
                if rel not in written:
                    _write(out / rel, data, decisions)
                    written.add(rel)
    decisions.check_all_seen(root, seen)


def _write(path: Path, data: bytes, decisions: Decisions) -> None:
    with atomic_output(path) as f:
        f.write(data)
    decisions.counts.files += 1
