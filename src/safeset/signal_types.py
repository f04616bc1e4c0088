"""The hash types safeset matches, one class each, in the manner of python-threatexchange.

Each type knows how to parse its text form and how to build an index over many known values.
Values travel as fixed-width raw bytes (numpy ``uint8`` rows) so that a list of millions of
entries stays a few compact arrays instead of millions of Python strings.
"""

from __future__ import annotations

import string
from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from safeset.matching.exact_index import ExactIndex
from safeset.matching.pdq_index import PDQIndex

_HEX = frozenset(string.hexdigits)


class SignalType(ABC):
    name: ClassVar[str]
    nbytes: ClassVar[int]
    # Whether matching is by distance (perceptual) or by equality (cryptographic).
    perceptual: ClassVar[bool] = False

    @classmethod
    def parse(cls, text: str) -> bytes:
        """Raw bytes of a hex hash; ValueError with a reason that does not echo the value."""
        want = 2 * cls.nbytes
        if len(text) != want:
            raise ValueError(
                f"{cls.name} hash must be {want} hex digits, got {len(text)} characters"
            )
        if not _HEX.issuperset(text):
            raise ValueError(f"{cls.name} hash has non-hex characters")
        return bytes.fromhex(text)

    @classmethod
    @abstractmethod
    def build_index(cls, values: np.ndarray) -> ExactIndex | PDQIndex:
        """An index over ``values`` (N x nbytes uint8) whose entry ids are row numbers."""


class _Exact(SignalType):
    @classmethod
    def build_index(cls, values: np.ndarray) -> ExactIndex:
        return ExactIndex.build(values)


class MD5(_Exact):
    name = "md5"
    nbytes = 16


class SHA1(_Exact):
    name = "sha1"
    nbytes = 20


class SHA256(_Exact):
    name = "sha256"
    nbytes = 32


class PDQ(SignalType):
    name = "pdq"
    nbytes = 32
    perceptual = True

    @classmethod
    def build_index(cls, values: np.ndarray) -> PDQIndex:
        return PDQIndex.build(values)


SIGNAL_TYPES: dict[str, type[SignalType]] = {t.name: t for t in (PDQ, MD5, SHA1, SHA256)}

# Names other tools use for the same thing.
ALIASES = {"photo_md5": "md5", "pdq_hash": "pdq", "sha-1": "sha1", "sha-256": "sha256"}


def lookup(name: str) -> type[SignalType] | None:
    """The signal type for a name as written in a list or on the command line, else None."""
    key = name.strip().lower()
    return SIGNAL_TYPES.get(ALIASES.get(key, key))
