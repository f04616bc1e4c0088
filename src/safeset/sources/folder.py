"""A folder of image files, read recursively; key = path relative to the folder.

Every regular file is a sample except ``.txt``/``.json`` sidecars of a same-named image (its
caption and metadata). A file that is not an image still becomes a sample, so decoding records
why it was not scanned instead of the file silently passing through.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safeset.errors import SafesetError
from safeset.sample import Sample
from safeset.sources.base import IMAGE_EXTENSIONS, Shard, Source, extension

FILES_PER_SHARD = 1000
SIDECAR_EXTENSIONS = ("txt", "json")


def list_samples(root: Path) -> list[str]:
    """Sorted relative paths (POSIX) of the sample files under ``root``, sidecars excluded."""
    files: list[str] = []
    # followlinks=False: a symlink loop cannot trap the walk; linked files are still listed.
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False, onerror=_walk_error):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, root)
        for name in filenames:
            rel = name if rel_dir == "." else f"{Path(rel_dir).as_posix()}/{name}"
            files.append(rel)
    present = set(files)
    return sorted(f for f in files if not _is_sidecar(f, present))


def _walk_error(exc: OSError) -> None:
    raise SafesetError(f"cannot list {exc.filename}: {exc.strerror}")


def _stem(rel: str) -> str:
    return rel.rsplit(".", 1)[0] if "." in rel.rsplit("/", 1)[-1] else rel


def _is_sidecar(rel: str, present: set[str]) -> bool:
    if extension(rel) not in SIDECAR_EXTENSIONS:
        return False
    stem = _stem(rel)
    return any(f"{stem}.{ext}" in present for ext in IMAGE_EXTENSIONS) or any(
        f"{stem}.{ext.upper()}" in present for ext in IMAGE_EXTENSIONS
    )


@dataclass(frozen=True)
class FolderShard(Shard):
    root: str
    start: int
    files: tuple[str, ...]

    def read(self) -> Iterator[Sample]:
        root = Path(self.root)
        for offset, rel in enumerate(self.files):
            path = root / rel
            caption, meta = _sidecars(path)
            yield Sample(
                key=rel,
                source=self.root,
                location=rel,
                index=self.start + offset,
                load=_regular_file_reader(path),
                caption=caption,
                url=meta.get("url") if isinstance(meta.get("url"), str) else None,
                meta=meta,
            )


def _regular_file_reader(path: Path):
    def load() -> bytes:
        # A FIFO or device under an image name would block or never end: read regular files only.
        if not stat.S_ISREG(path.stat().st_mode):
            raise OSError(f"not a regular file: {path.name}")
        return path.read_bytes()

    return load


def _sidecars(path: Path) -> tuple[str | None, dict[str, Any]]:
    caption, meta = None, {}
    txt, js = path.with_suffix(".txt"), path.with_suffix(".json")
    if txt != path and txt.is_file():
        caption = txt.read_text(encoding="utf-8", errors="replace").strip()
    if js != path and js.is_file():
        try:
            loaded = json.loads(js.read_bytes())
            meta = loaded if isinstance(loaded, dict) else {}
        except ValueError:
            meta = {}
    return caption, meta


class FolderSource(Source):
    kind = "folder"

    def __init__(self, root: Path) -> None:
        self.root = root
        self._files: list[str] | None = None

    @property
    def files(self) -> list[str]:
        if self._files is None:
            self._files = list_samples(self.root)
        return self._files

    def shards(self, prefix: str) -> list[Shard]:
        files = self.files
        return [
            FolderShard(
                id=f"{prefix}-{n:06d}",
                root=str(self.root),
                start=start,
                files=tuple(files[start : start + FILES_PER_SHARD]),
            )
            for n, start in enumerate(range(0, len(files), FILES_PER_SHARD))
        ]

    def roots(self) -> list[Path]:
        return [self.root]

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": str(self.root.resolve()), "files": len(self.files)}
