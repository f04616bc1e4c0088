"""Recorded original hashes: digests of the original file that a sample's metadata carries.

img2dataset records a hash of each file as it was downloaded (``sha256`` by default, ``md5``
or ``sha512`` with ``--compute_hash``), in each sample's json and each row of its Parquet,
before it resizes and re-encodes the image. Those are exactly the values md5 and sha256 hash
lists hold, so they are matched against the lists too, as their own signal: a query whose file
is ``recorded:FIELD``, which the reason shows as ``hash:LIST:sha256(recorded)`` and the
manifest's ``matched_part`` as ``recorded:sha256``.

A recorded hash is the dataset's word about a file it no longer stores; clean never relies on
it (it verifies the stored bytes against the stored bytes' own digests).
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from typing import Any

from safeset.signals.base import HashType, HashValue

#: Metadata field -> hash type, as img2dataset names them. Other names: ``ScanOptions``'s
#: ``recorded_fields`` adds to these.
RECORDED_FIELDS: Mapping[str, str] = {
    "md5": "md5",
    "sha1": "sha1",
    "sha256": "sha256",
    "sha512": "sha512",
}
#: Prefix of a recorded query's file name: how matches and reasons tell them apart.
PREFIX = "recorded:"
_HEX = frozenset(string.hexdigits)


def is_recorded(file: str) -> bool:
    return file.startswith(PREFIX)


def recorded_values(
    meta: Mapping[str, Any],
    types: Iterable[type[HashType]],
    fields: Mapping[str, str] = RECORDED_FIELDS,
) -> list[tuple[str, HashValue, str]]:
    """(hash type name, value, file name) for every well-formed recorded hash of a type the
    job matches on, read from ``fields`` (metadata field -> hash type); malformed values
    (hostile or truncated metadata) are ignored."""
    by_name = {t.name: t for t in types}
    out = []
    for field, type_name in fields.items():
        value = meta.get(field)
        hash_cls = by_name.get(type_name)
        if hash_cls is None or not isinstance(value, str):
            continue
        text = value.strip().lower()
        if len(text) != 2 * hash_cls.nbytes or not _HEX.issuperset(text):
            continue
        out.append((type_name, HashValue(bytes.fromhex(text)), f"{PREFIX}{field}"))
    return out
