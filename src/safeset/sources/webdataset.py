"""WebDataset tar shards as img2dataset writes them: ``KEY.jpg`` beside ``KEY.txt``, ``KEY.json``.

A sample is a run of consecutive members sharing a key (the member path up to the first dot
of its file name), which is how WebDataset itself groups them. Nothing is ever extracted to
disk; member names, however hostile, are only strings here.
"""

from __future__ import annotations

import json
import lzma
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safeset.sample import Sample
from safeset.sources.base import IMAGE_EXTENSIONS, Shard, Source, extension


def member_key(name: str) -> str:
    """WebDataset's sample key: directory plus the file name up to its first dot."""
    head, _, base = name.rpartition("/")
    stem = base.split(".", 1)[0]
    return f"{head}/{stem}" if head else stem


@dataclass
class MemberGroup:
    """The members of one sample as read from the tar, in order."""

    key: str
    members: list[tarfile.TarInfo] = field(default_factory=list)
    data: dict[str, bytes] = field(default_factory=dict)
    problem: str | None = None


def iter_groups(path: Path) -> Iterator[MemberGroup]:
    """Runs of same-key members with their bytes; a broken tar ends in a problem group."""
    group: MemberGroup | None = None
    try:
        with tarfile.open(path, mode="r:*") as tf:
            for member in tf:
                if member.isdir():
                    continue
                key = member_key(member.name)
                if group is None or key != group.key:
                    if group is not None:
                        yield group
                    group = MemberGroup(key)
                group.members.append(member)
                if member.isfile():
                    f = tf.extractfile(member)
                    group.data[member.name] = f.read() if f else b""
                else:
                    group.problem = f"tar member {member.name!r} is a link or special file"
    except (tarfile.TarError, EOFError, OSError, ValueError, zlib.error, lzma.LZMAError) as exc:
        if group is not None:
            yield group
        yield MemberGroup(key="", problem=f"corrupt or truncated tar: {exc}")
        return
    if group is not None:
        yield group


def iter_samples(path: Path) -> Iterator[tuple[Sample, MemberGroup]]:
    """Each sample of a tar with the members it was made from (a sink copies those)."""
    for index, group in enumerate(iter_groups(path)):
        yield _sample(str(path), index, group), group


@dataclass(frozen=True)
class TarShard(Shard):
    path: str

    def read(self) -> Iterator[Sample]:
        for sample, _ in iter_samples(Path(self.path)):
            yield sample


def _sample(path: str, index: int, group: MemberGroup) -> Sample:
    images = [m.name for m in group.members if extension(m.name) in IMAGE_EXTENSIONS]
    error = group.problem
    if error is None and not images:
        error = "no image member"
    elif error is None and len(images) > 1:
        error = f"{len(images)} image members in one sample"
    image = images[0] if images else ""
    data = group.data.get(image, b"")
    caption, meta = None, {}
    for name, blob in group.data.items():
        ext = extension(name)
        if ext == "txt":
            caption = blob.decode("utf-8", errors="replace").strip()
        elif ext == "json":
            meta = _json(blob)
    url = meta.get("url")
    return Sample(
        key=group.key or f"#{index}",
        source=path,
        location=image or (group.members[0].name if group.members else ""),
        index=index,
        load=lambda: data,
        caption=caption,
        url=url if isinstance(url, str) else None,
        meta=meta,
        error=error,
    )


def _json(blob: bytes) -> dict[str, Any]:
    try:
        loaded = json.loads(blob)
    except ValueError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


class TarSource(Source):
    kind = "webdataset"

    def __init__(self, files: list[Path], folder: Path | None = None) -> None:
        self.files = files
        # The folder the user named, if any: all of it then counts as the source.
        self.folder = folder

    def shards(self, prefix: str) -> list[Shard]:
        return [TarShard(id=f"{prefix}-{n:06d}", path=str(p)) for n, p in enumerate(self.files)]

    def roots(self) -> list[Path]:
        return [self.folder] if self.folder else list(self.files)

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "files": [str(p.resolve()) for p in self.files]}
