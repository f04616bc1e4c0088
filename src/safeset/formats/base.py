"""What every dataset format provides: a way to recognise it, shards that workers can read
independently, and a writer of the cleaned copy in the same format.

A format is one module holding its ``Format`` (detection), its ``Source`` (reading, and
``clean`` writing back) and its ``Shard``. Formats are registered in ``safeset.formats``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from safeset.sample import Sample

if TYPE_CHECKING:
    from safeset.fetch import FetchOptions
    from safeset.formats.clean import Decisions

# Names that say a file is an image. Bytes are what count, though: every stored file of a
# sample is hashed, and decoded where it turns out to be an image, whatever its name.
IMAGE_EXTENSIONS = frozenset(
    {
        "jpg", "jpeg", "jfif", "png", "webp", "gif", "bmp", "tif", "tiff",
        "avif", "heic", "heif", "jp2", "j2k", "jpx", "jxl",
    }
)  # fmt: skip


def extension(name: str) -> str:
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


@dataclass(frozen=True)
class Shard(ABC):
    """A unit of work: small, picklable, and enough to re-read its samples anywhere.

    ``id`` names the shard's result file, so it must be stable for the same job.
    """

    id: str

    @abstractmethod
    def read(self) -> Iterator[Sample]:
        """The shard's samples in source order, each with its ``index`` within its source file."""


class Source(ABC):
    """One SOURCE argument, read: a folder, a set of tar or Parquet files, a URL table..."""

    kind: ClassVar[str]

    @abstractmethod
    def shards(self, prefix: str) -> list[Shard]:
        """All shards, ids starting with ``prefix`` so several sources never collide."""

    @abstractmethod
    def roots(self) -> list[Path]:
        """Folders and files that belong to the source; outputs may not be written inside."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """What identifies this source in a job record."""

    @abstractmethod
    def clean(self, decisions: Decisions, out: Path) -> None:
        """Write the source again under ``out``, in its own format, holding exactly the samples
        ``decisions`` keeps, byte-identical and in order; refuse a sample whose bytes differ
        from those scanned (``decisions.verify``)."""


class FileSource(Source):
    """A source made of files, perhaps found in a folder the user named: then all of that
    folder belongs to the source."""

    files: list[Path]
    folder: Path | None

    def roots(self) -> list[Path]:
        return [self.folder] if self.folder else list(self.files)


@dataclass(frozen=True)
class SourceOptions:
    """How sources are read: URL tables' url column and how their images are downloaded."""

    url_col: str = "url"
    fetch: FetchOptions = field(default_factory=lambda: _default_fetch())


def _default_fetch() -> FetchOptions:
    from safeset.fetch import FetchOptions

    return FetchOptions()


@dataclass(frozen=True)
class Target:
    """A SOURCE argument as the formats see it when deciding whether it is theirs."""

    arg: str
    files: list[Path]  # the file, the glob's matches, or a folder's top-level files
    folder: Path | None  # set when the argument is a folder
    options: SourceOptions
    # Set when ``files`` are a folder's dataset files from its whole tree (formats.layout),
    # metadata beside them left out: the subfolders are then already looked into.
    tree: bool = False

    def flat_files(self, is_kind, files: list[Path] | None = None) -> list[Path] | None:
        """``files`` (the target's by default) if there are some, all of one kind, and no
        subfolders beside them; else None."""
        files = self.files if files is None else files
        if not files or self.subfolders or not all(map(is_kind, files)):
            return None
        return files

    @property
    def subfolders(self) -> list[Path]:
        if self.tree or self.folder is None:
            return []
        return sorted(p for p in self.folder.iterdir() if p.is_dir())


class Format(ABC):
    name: ClassVar[str]

    @classmethod
    @abstractmethod
    def detect(cls, target: Target) -> Source | None:
        """This format's source for ``target``, or None if the target is not of this format
        (SafesetError if it is, but cannot be read as such)."""
