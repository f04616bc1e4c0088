"""Cryptographic digests of a sample's stored bytes, the signals exact-hash lists hold."""

from __future__ import annotations

import hashlib

EXACT_TYPES = ("md5", "sha1", "sha256")


def exact_digests(data: bytes) -> dict[str, str]:
    """md5, sha1 and sha256 of ``data`` as lowercase hex."""
    return {name: hashlib.new(name, data).hexdigest() for name in EXACT_TYPES}
