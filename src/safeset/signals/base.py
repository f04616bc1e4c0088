"""What a hash type is: how its values are computed, parsed, compared, indexed and stored.

One class per hash type, in the manner of python-threatexchange's SignalType: a type knows its
text form, its distance, the index that serves it, its quality gate and its result columns, and
how to compute its values from a sample's stored bytes or decoded pixels. Values travel as
fixed-width raw bytes (numpy ``uint8`` rows), so a list of millions of entries stays a few
compact arrays rather than millions of Python strings.

Types are registered in ``safeset.signals`` (third-party ones through the ``safeset.signals``
entry point group); lists, matching, results and clean find them there by name.
"""

from __future__ import annotations

import string
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol

import numpy as np
import pyarrow as pa

if TYPE_CHECKING:
    from safeset.signals.image import ImageView

_HEX = frozenset(string.hexdigits)


class Index(Protocol):
    """Finds the entries within a distance of each query (entry ids are row numbers)."""

    def __len__(self) -> int: ...

    def search(self, queries: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(query_row, entry_id, distance) for every pair within ``radius``."""
        ...

    def save(self, path: Path) -> None: ...


@dataclass(frozen=True)
class HashValue:
    """One computed value: raw bytes, its quality (100 when the type has none), which variant
    of the stored pixels it is the hash of (0 = as stored; see ``signals.variants``)."""

    value: bytes
    quality: int = 100
    variant: int = 0

    @property
    def hex(self) -> str:
        return self.value.hex()


@dataclass(frozen=True)
class ComputeOptions:
    """How a job asks for values: ``dihedral`` adds the 8 rotations/flips; ``exact`` asks for
    the reference computation where a type has a faster, approximate one; ``unpad`` adds the
    hash of the picture inside a border or letterbox where there is one (``signals.unpad``)."""

    dihedral: bool = False
    exact: bool = False
    unpad: bool = False


class HashType(ABC):
    name: ClassVar[str]
    nbytes: ClassVar[int]
    #: Other names lists use for this type (``photo_md5``...).
    aliases: ClassVar[tuple[str, ...]] = ()
    #: Largest distance that counts as a match by default (0: equality).
    default_threshold: ClassVar[int] = 0
    #: Values below this quality are recorded but never matched.
    min_quality: ClassVar[int] = 0
    #: How far a fast value may sit from the reference one: entries that far past the threshold
    #: are confirmed on a reference value (``ComputeOptions(exact=True)``) before dismissal.
    recheck_margin: ClassVar[int] = 0

    @classmethod
    def perceptual(cls) -> bool:
        return cls.default_threshold > 0

    @classmethod
    def parse(cls, text: str) -> bytes:
        """Raw bytes of a hex value; ValueError with a reason that does not echo the value."""
        want = 2 * cls.nbytes
        if len(text) != want:
            raise ValueError(
                f"{cls.name} hash must be {want} hex digits, got {len(text)} characters"
            )
        if not _HEX.issuperset(text):
            raise ValueError(f"{cls.name} hash has non-hex characters")
        return bytes.fromhex(text)

    @classmethod
    def distance(cls, a: bytes, b: bytes) -> int:
        """Hamming distance for perceptual types, 0 or 1 (equal or not) otherwise."""
        if cls.perceptual():
            return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).bit_count()
        return int(a != b)

    @classmethod
    @abstractmethod
    def build_index(cls, values: np.ndarray) -> Index:
        """An index over ``values`` (N x nbytes uint8) whose entry ids are row numbers."""

    @classmethod
    @abstractmethod
    def load_index(cls, path: Path) -> Index:
        """An index ``save`` wrote."""

    @classmethod
    def fields(cls) -> list[pa.Field]:
        """This type's result columns for one stored file: its hex value, and its quality
        where the type has one."""
        cols = [pa.field(cls.name, pa.string())]
        if cls.min_quality:
            cols.append(pa.field(f"{cls.name}_quality", pa.int16()))
        return cols

    @classmethod
    def columns(cls, values: list[HashValue]) -> dict[str, object]:
        """The result columns' values from a file's values (variant 0 is the stored one)."""
        first = values[0] if values else None
        out: dict[str, object] = {cls.name: first.hex if first else None}
        if cls.min_quality:
            out[f"{cls.name}_quality"] = first.quality if first else None
        return out


class BytesHashType(HashType):
    """A type computed from a file's stored bytes, whether or not they decode."""

    @abstractmethod
    def compute(self, data: bytes) -> HashValue: ...


class PixelHashType(HashType):
    """A type computed from decoded pixels (perceptual hashes), served by an exhaustive
    Hamming index unless it brings a faster one (PDQ does)."""

    @classmethod
    def build_index(cls, values: np.ndarray) -> Index:
        from safeset.matching.hamming_index import HammingIndex

        return HammingIndex.build(values)

    @classmethod
    def load_index(cls, path: Path) -> Index:
        from safeset.matching.hamming_index import HammingIndex

        return HammingIndex.load(path)

    @abstractmethod
    def compute(self, image: ImageView, options: ComputeOptions) -> list[HashValue]:
        """Values for the stored pixels, then their variants if ``options`` asks for them;
        ``UnreadableImage`` if the pixels cannot be decoded."""
