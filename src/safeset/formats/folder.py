"""A folder of image files, read recursively; key = path relative to the folder.

Every regular file is a sample except ``.txt``/``.json`` sidecars of a same-named image (its
caption and metadata). A file that is not an image still becomes a sample, so decoding records
why it was not scanned instead of the file silently passing through.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safeset import limits
from safeset.errors import SafesetError
from safeset.formats.base import IMAGE_EXTENSIONS, Format, Shard, Source, Target, extension
from safeset.formats.clean import Decisions, atomic_output
from safeset.sample import Part, Sample

FILES_PER_SHARD = 1000
SIDECAR_EXTENSIONS = ("txt", "json")


def list_samples(root: Path) -> list[str]:
    """Sorted relative paths (POSIX) of the sample files under ``root``, sidecars excluded.

    Symbolic links are listed, never silently passed over: a link to a folder inside ``root``
    is walked (unless it leads back to one of its own ancestors, whose files are listed
    anyway); a link leading outside ``root`` is listed as it is, and reading it then fails with
    a reason, since a dataset may not make safeset read outside it (invariant 7).
    """
    real_root = os.path.realpath(root)
    files: list[str] = []
    _walk(Path(real_root), root, "", [real_root], files)
    present = set(files)
    return sorted(f for f in files if not _is_sidecar(f, present))


def _walk(real_root: Path, folder: Path, rel: str, ancestors: list[str], out: list[str]) -> None:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        raise SafesetError(f"cannot list {folder}: {exc.strerror or exc}") from None
    for entry in entries:
        path = f"{rel}{entry.name}"
        if not entry.is_dir(follow_symlinks=False) and not entry.is_symlink():
            out.append(path)
            continue
        if entry.is_dir(follow_symlinks=False):
            _walk(real_root, Path(entry.path), f"{path}/", [*ancestors, entry.path], out)
            continue
        target = os.path.realpath(entry.path)
        if not os.path.isdir(target) or not Path(target).is_relative_to(real_root):
            out.append(path)  # a file link, a dangling one, or one leading outside
        elif not any(Path(a).is_relative_to(target) for a in map(os.path.realpath, ancestors)):
            _walk(real_root, Path(entry.path), f"{path}/", [*ancestors, entry.path], out)


def _stem(rel: str) -> str:
    return rel.rsplit(".", 1)[0] if "." in rel.rsplit("/", 1)[-1] else rel


def _is_sidecar(rel: str, present: set[str]) -> bool:
    if extension(rel) not in SIDECAR_EXTENSIONS:
        return False
    stem = _stem(rel)
    return any(f"{stem}.{ext}" in present for ext in IMAGE_EXTENSIONS) or any(
        f"{stem}.{ext.upper()}" in present for ext in IMAGE_EXTENSIONS
    )


def sidecars(rel: str) -> list[str]:
    """The sidecar names a file at ``rel`` may have (its caption and metadata)."""
    stem = _stem(rel)
    return [f"{stem}.{ext}" for ext in SIDECAR_EXTENSIONS if f"{stem}.{ext}" != rel]


@dataclass(frozen=True)
class FolderShard(Shard):
    root: str
    start: int
    files: tuple[str, ...]

    def read(self) -> Iterator[Sample]:
        root = Path(self.root)
        for offset, rel in enumerate(self.files):
            parts = tuple(
                Part(side, contained_reader(root, side))
                for side in sidecars(rel)
                if (root / side).is_file()
            )
            caption, meta = _sidecars(parts)
            yield Sample(
                key=rel,
                source=self.root,
                location=rel,
                index=self.start + offset,
                load=contained_reader(root, rel),
                caption=caption,
                url=meta.get("url") if isinstance(meta.get("url"), str) else None,
                meta=meta,
                parts=parts,
            )


def contained_reader(root: Path, rel: str) -> Callable[[], bytes]:
    """A reader of ``root/rel`` that refuses what lies outside ``root`` and what is not a
    regular file (a FIFO or device under an image name would block or never end)."""

    def load() -> bytes:
        path = root / rel
        real = Path(os.path.realpath(path))
        if not real.is_relative_to(os.path.realpath(root)):
            raise OSError(f"symbolic link leads outside the dataset folder: {rel}")
        info = real.stat()
        if not stat.S_ISREG(info.st_mode):
            raise OSError(f"not a regular file: {path.name}")
        # A sparse file can declare terabytes it does not store: checked before reading.
        limits.check_file_size(rel, info.st_size)
        return real.read_bytes()

    return load


def _sidecars(parts: tuple[Part, ...]) -> tuple[str | None, dict[str, Any]]:
    caption, meta = None, {}
    for part in parts:
        try:
            blob = part.load()
        except OSError:
            continue  # the scan records the part as unreadable
        if extension(part.name) == "txt":
            caption = blob.decode("utf-8", errors="replace").strip()
        else:
            try:
                loaded = json.loads(blob)
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

    def clean(self, decisions: Decisions, out: Path) -> None:
        """The same relative paths: each kept file with its sidecars."""
        root = str(self.root)
        seen = 0
        # Images sharing a stem (p.jpg, p.png) share its sidecars (p.txt): written once.
        written: set[str] = set()
        for shard in self.shards("clean"):
            for sample in shard.read():
                seen += 1
                scanned = decisions.kept(root, sample.index, sample.location)
                if scanned is None:
                    continue
                try:
                    files = [(sample.location, sample.load())]
                    files += [(part.name, part.load()) for part in sample.parts]
                except OSError:
                    # Unreadable when scanned too (else the md5 check below refuses it): a
                    # review row that --keep-review cannot copy.
                    if not scanned.md5:
                        decisions.cannot_copy()
                        continue
                    raise SafesetError(f"cannot copy {sample.location} from {root}") from None
                decisions.verify(scanned, root, files)
                for rel, data in files:
                    if rel not in written:
                        _write(out / rel, data, decisions)
                        written.add(rel)
        decisions.check_all_seen(root, seen)


class FolderFormat(Format):
    """Any folder no other format claims: its files are the samples."""

    name = "folder"

    @classmethod
    def detect(cls, target: Target) -> Source | None:
        return FolderSource(target.folder) if target.folder else None


def _write(path: Path, data: bytes, decisions: Decisions) -> None:
    with atomic_output(path) as f:
        f.write(data)
    decisions.counts.files += 1
