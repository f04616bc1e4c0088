"""What a format's clean writer needs from the scan: per sample, keep it or not, and the proof
that it is the sample that was scanned."""

from __future__ import annotations

import hashlib
import os
from contextlib import AbstractContextManager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from safeset.atomic import atomic_file
from safeset.errors import SafesetError
from safeset.text import printable


@dataclass(frozen=True)
class Scanned:
    """What the scan recorded of one sample: its action and what identifies its bytes."""

    action: str
    location: str
    md5: str | None
    url: str | None = None
    # md5 of each of the sample's parts, in order: what a sink copies besides the image.
    parts: tuple[str | None, ...] = ()


@dataclass
class CleanCounts:
    kept: int = 0
    left_out: int = 0
    files: int = 0
    # Of left_out: samples to be kept (review, with --keep-review) that cannot be read at all.
    unreadable: int = 0
    # Set when the sources went into folders of their own (they hold the same file names).
    folders: list[str] = field(default_factory=list)


@dataclass
class Decisions:
    """What the scan recorded of every sample, looked up by (source file, index within it)."""

    recorded: dict[str, dict[int, Scanned]]
    keep_actions: frozenset[str]
    counts: CleanCounts = field(default_factory=CleanCounts)

    def kept(
        self, source: str, index: int, location: str, *, url: str | None = None
    ) -> Scanned | None:
        """The record if this sample is to be written, else None; refuses unknown samples.

        ``url`` is the proof of identity for a row of a URL table, as md5 is for bytes.
        """
        source, location = printable(source), printable(location)  # as the scan stored them
        scanned = self.recorded.get(source, {}).get(index)
        if scanned is None or scanned.location != location:
            raise SafesetError(
                f"{source}: sample {location!r} is not in the scan results; the source changed "
                "since it was scanned: scan it again"
            )
        if url is not None and url != scanned.url:
            raise SafesetError(
                f"{source}: {location} has another url than when it was scanned: scan it again"
            )
        if scanned.action in self.keep_actions:
            self.counts.kept += 1
            return scanned
        self.counts.left_out += 1
        return None

    def cannot_copy(self) -> None:
        """The sample ``kept`` just passed cannot be read: it is left out, and counted so."""
        self.counts.kept -= 1
        self.counts.left_out += 1
        self.counts.unreadable += 1

    @staticmethod
    def verify(scanned: Scanned, source: str, files: list[tuple[str, bytes]]) -> None:
        """Refuse to write bytes other than those the scan judged: ``files`` are the sample's
        image then its parts, as (name, bytes), each checked against its recorded md5."""
        expected = [scanned.md5, *scanned.parts]
        if len(files) != len(expected):
            raise SafesetError(
                f"{source}: {scanned.location!r} holds other files than when it was scanned: "
                "scan it again"
            )
        for (name, data), md5 in zip(files, expected, strict=True):
            if md5 and hashlib.md5(data).hexdigest() != md5:
                raise SafesetError(
                    f"{source}: {name!r} changed since it was scanned (md5 differs): scan it again"
                )

    def check_all_seen(self, source: str, seen: int) -> None:
        expected = len(self.recorded.get(printable(source), {}))
        if seen != expected:
            raise SafesetError(
                f"{source}: holds {seen} samples but the scan recorded {expected}: scan it again"
            )


# Set while a clean finishes the output of an interrupted one (same job): its files may then
# be written again. Otherwise a cleaned-output file never replaces an existing file.
REWRITING: ContextVar[bool] = ContextVar("safeset_clean_rewriting", default=False)


def atomic_output(path: Path) -> AbstractContextManager[BinaryIO]:
    """A cleaned-output file: written atomically, never over an existing file (except one
    an interrupted run of the same clean left, see ``REWRITING``)."""
    return atomic_file(path, overwrite=REWRITING.get())


def output_path(path: Path, folder: Path | None, out: Path) -> Path:
    """Where a dataset file's cleaned copy goes: at its place under the folder named as
    SOURCE (split folders keep their splits, and same-named shards of two splits never
    collide), else under its own name."""
    if folder is not None:
        # As written, links not followed: a hub snapshot's files link into its blobs/.
        try:
            return out / Path(os.path.abspath(path)).relative_to(os.path.abspath(folder))
        except ValueError:
            pass
    return out / path.name
