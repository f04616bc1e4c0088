"""What every source format provides: shards that workers can read independently."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safeset.sample import Sample

# Names that say a file is an image. Bytes are what count, though: every stored file of a
# sample is hashed, and decoded where it turns out to be an image, whatever its name.
IMAGE_EXTENSIONS = frozenset(
    {
        "jpg", "jpeg", "jfif", "png", "webp", "gif", "bmp", "tif", "tiff",
        "avif", "heic", "heif", "jp2", "j2k", "jpx", "jxl",
    }
)  # fmt: skip


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
    """One SOURCE argument: a folder, or a set of tar or Parquet files."""

    kind: str

    @abstractmethod
    def shards(self, prefix: str) -> list[Shard]:
        """All shards, ids starting with ``prefix`` so several sources never collide."""

    @abstractmethod
    def roots(self) -> list[Path]:
        """Folders that belong to the source; outputs may not be written inside them."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """What identifies this source in a job record."""


def extension(name: str) -> str:
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""
