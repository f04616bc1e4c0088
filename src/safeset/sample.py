"""One record of a dataset, independent of where it is stored."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Part:
    """One more stored file of a sample besides its image: a caption, metadata, a second image,
    a member of a type safeset does not know. Its bytes are hashed and matched like the image's
    (a known file is known whatever its name), and a sink copies it only if the sample is kept.
    """

    name: str  # tar member name or path relative to the dataset folder
    load: Callable[[], bytes]


@dataclass
class Sample:
    """A dataset record: a stable key, where it lives, and its bytes on demand.

    ``location`` is what a sink needs to find the record again in its source file: a member
    name in a tar, a row number in a Parquet file, a relative path in a folder.
    """

    key: str
    source: str
    location: str
    # Position within its source file (sample ordinal in a tar, row in a Parquet file, rank in
    # a folder's sorted listing): unique even where keys or member names repeat.
    index: int
    load: Callable[[], bytes]
    caption: str | None = None
    url: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    # Set when the record is broken before its image can even be read (e.g. no image member).
    error: str | None = None
    parts: tuple[Part, ...] = ()
