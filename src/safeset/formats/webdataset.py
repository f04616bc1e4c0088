"""WebDataset tar shards as img2dataset writes them: ``KEY.jpg`` beside ``KEY.txt``, ``KEY.json``.

A sample is a run of consecutive members sharing a key (the member path up to the first dot
of its file name), which is how WebDataset itself groups them. Nothing is ever extracted to
disk; member names, however hostile, are only strings here.
"""

from __future__ import annotations

import io
import json
import lzma
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safeset import limits
from safeset.formats.base import (
    IMAGE_EXTENSIONS,
    FileSource,
    Format,
    Shard,
    Source,
    Target,
    extension,
)
from safeset.formats.clean import Decisions, atomic_output, output_path
from safeset.formats.tar_members import BadEnd, Member, read_members
from safeset.sample import Part, Sample

# How each tar suffix is compressed, as tarfile names it ("" for none).
COMPRESSION = {".tar.gz": ":gz", ".tgz": ":gz", ".tar.bz2": ":bz2", ".tar.xz": ":xz", ".tar": ""}
TAR_SUFFIXES = tuple(COMPRESSION)


def compression(path: Path) -> str:
    """tarfile's mode suffix for a shard's compression, from its name (":gz", or "")."""
    name = path.name.lower()
    return next((c for suffix, c in COMPRESSION.items() if name.endswith(suffix)), "")


def member_key(name: str) -> str:
    """WebDataset's sample key: directory plus the file name up to its first dot."""
    head, _, base = name.rpartition("/")
    stem = base.split(".", 1)[0]
    return f"{head}/{stem}" if head else stem


@dataclass
class MemberGroup:
    """The members of one sample as read from the tar, in order, each with its own bytes (None
    for links and special files). Names may repeat (``tar -r`` appends): order, not name,
    identifies a member."""

    key: str
    members: list[Member] = field(default_factory=list)
    data: list[bytes | None] = field(default_factory=list)
    problem: str | None = None
    # A member over the size bound was not read: the sample can be neither judged nor copied.
    too_large: bool = False


def iter_groups(path: Path) -> Iterator[MemberGroup]:
    """Runs of same-key members with their bytes; a broken tar ends in a problem group."""
    group: MemberGroup | None = None
    try:
        for member, read in read_members(path):
            if member.kind == "dir":
                continue
            key = member_key(member.name)
            if group is None or key != group.key:
                if group is not None:
                    yield group
                group = MemberGroup(key)
            if member.kind == "other":
                group.problem = f"tar member {member.name!r} is a link or special file"
            elif member.size > limits.MAX_FILE_BYTES:
                # Declared, not stored, maybe: a sparse or compressed member is read only if
                # it fits (it is skipped without being held).
                group.problem = group.problem or _too_large(member)
                group.too_large = True
            group.members.append(member)
            group.data.append(read())
        if group is not None:  # complete: the archive's end was read past it
            yield group
    except BadEnd as exc:  # every member whole, then something that is not a tar's end
        if group is not None:
            yield group
        yield MemberGroup(key="", problem=f"corrupt or truncated tar: {exc}")
    except (tarfile.TarError, EOFError, OSError, ValueError, zlib.error, lzma.LZMAError) as exc:
        # The sample being read when the archive broke is incomplete: the error row stands for
        # it (and whatever followed), never a partial copy of it.
        yield MemberGroup(key="", problem=f"corrupt or truncated tar: {exc}")


def _too_large(member: Member) -> str:
    try:
        limits.check_file_size(f"tar member {member.name!r}", member.size)
    except limits.TooLarge as exc:
        return str(exc)
    return ""


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


def _constant(blob: bytes):
    return lambda: blob


def _sample(path: str, index: int, group: MemberGroup) -> Sample:
    """The sample of a member group: its first image member is the image, every other member
    (captions, metadata, further images, types unknown to safeset) one of its parts."""
    stored = [(m.name, d) for m, d in zip(group.members, group.data, strict=True) if d is not None]
    images = [i for i, (name, _) in enumerate(stored) if extension(name) in IMAGE_EXTENSIONS]
    first = images[0] if images else None
    error = group.problem
    if first is None and error is None:
        error = "no image member"
    # Without an image member the first stored member stands in: its bytes are still hashed.
    main = first if first is not None else (0 if stored else None)
    caption, meta = None, {}
    for name, blob in stored:
        ext = extension(name)
        if ext == "txt" and caption is None:
            caption = blob.decode("utf-8", errors="replace").strip()
        elif ext == "json" and not meta:
            meta = _json(blob)
    url = meta.get("url")
    location, data = stored[main] if main is not None else ("", b"")
    if main is None and group.members:
        location = group.members[0].name
    return Sample(
        key=group.key or f"#{index}",
        source=path,
        location=location,
        index=index,
        load=_constant(data),
        caption=caption,
        url=url if isinstance(url, str) else None,
        meta=meta,
        error=error,
        parts=tuple(
            Part(name, _constant(blob)) for i, (name, blob) in enumerate(stored) if i != main
        ),
    )


def _json(blob: bytes) -> dict[str, Any]:
    try:
        loaded = json.loads(blob)
    except ValueError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


class TarSource(FileSource):
    kind = "webdataset"

    def __init__(self, files: list[Path], folder: Path | None = None) -> None:
        self.files = files
        # The folder the user named, if any: all of it then counts as the source.
        self.folder = folder

    def shards(self, prefix: str) -> list[Shard]:
        return [TarShard(id=f"{prefix}-{n:06d}", path=str(p)) for n, p in enumerate(self.files)]

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "files": [str(p.resolve()) for p in self.files]}

    def clean(self, decisions: Decisions, out: Path) -> None:
        """Each shard again under its own name and compression, with every member of each kept
        sample; headers are rewritten by ``tarfile`` from the originals' metadata and nothing
        is ever extracted, so a hostile member name cannot reach the file system. Each shard
        keeps its place in the folder (split folders), and img2dataset's metadata Parquet and
        ``_stats.json`` beside it are written again to match (formats.img2dataset)."""
        from safeset.formats.img2dataset import clean_tar_sidecars

        for path in self.files:
            dest = output_path(path, self.folder, out)
            clean_tar(path, decisions, dest)
            clean_tar_sidecars(path, dest, self.folder)


class WebDatasetFormat(Format):
    """Tar shards: a folder holding ``.tar`` files (img2dataset's output), or tar files."""

    name = "webdataset"

    @classmethod
    def detect(cls, target: Target) -> Source | None:
        tars = [f for f in target.files if is_tar(f)]
        if target.folder is not None:
            # img2dataset output folders hold tar shards plus metadata-only Parquet: tars win.
            return TarSource(tars, folder=target.folder) if tars else None
        return TarSource(tars) if tars and len(tars) == len(target.files) else None


def is_tar(path: Path) -> bool:
    return path.name.lower().endswith(TAR_SUFFIXES)


def clean_tar(path: Path, decisions: Decisions, dest: Path) -> None:
    seen = 0
    with (
        atomic_output(dest) as f,
        tarfile.open(
            dest.name, f"w{compression(path)}", fileobj=f, format=tarfile.PAX_FORMAT
        ) as tf,
    ):
        for sample, group in iter_samples(path):
            seen += 1
            scanned = decisions.kept(str(path), sample.index, sample.location)
            if scanned is None:
                continue
            if group.too_large:
                decisions.cannot_copy()  # never read, so never judged: not copied
                continue
            files = [(sample.location, sample.load())] + [(p.name, p.load()) for p in sample.parts]
            decisions.verify(scanned, str(path), files)
            for member, data in zip(group.members, group.data, strict=True):
                tf.addfile(member.tarinfo(), io.BytesIO(data) if data is not None else None)
    decisions.counts.files += 1
    decisions.check_all_seen(str(path), seen)
