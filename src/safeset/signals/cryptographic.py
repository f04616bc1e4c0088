"""Cryptographic digests of a file's stored bytes: the values exact-hash lists hold.

They match by equality, on every stored file of a sample, also on files that do not decode:
a known file is known, broken or not.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from safeset.matching.exact_index import ExactIndex
from safeset.signals.base import BytesHashType, HashValue


class Digest(BytesHashType):
    """A hashlib digest; subclasses name the algorithm."""

    def compute(self, data: bytes) -> HashValue:
        return HashValue(hashlib.new(self.name, data).digest())

    @classmethod
    def build_index(cls, values: np.ndarray) -> ExactIndex:
        return ExactIndex.build(values)

    @classmethod
    def load_index(cls, path: Path) -> ExactIndex:
        return ExactIndex.load(path)


class MD5(Digest):
    name = "md5"
    nbytes = 16
    aliases = ("photo_md5",)


class SHA1(Digest):
    name = "sha1"
    nbytes = 20
    aliases = ("sha-1",)


class SHA256(Digest):
    name = "sha256"
    nbytes = 32
    aliases = ("sha-256",)


class SHA512(Digest):
    name = "sha512"
    nbytes = 64
    aliases = ("sha-512",)
