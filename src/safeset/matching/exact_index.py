"""Exact lookup of cryptographic digests: a sorted array and binary search.

A sorted ``uint8`` matrix viewed as one fixed-width byte string per row costs exactly the digest
size per entry (160 MB for 10M md5s), where a Python set of bytes would cost several times that.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


class ExactIndex:
    def __init__(self, keys: np.ndarray, ids: np.ndarray) -> None:
        self._keys = keys  # sorted, one np.void-free 'S' string per entry
        self._ids = ids

    @classmethod
    def build(cls, values: np.ndarray) -> ExactIndex:
        keys = _as_strings(values)
        order = np.argsort(keys, kind="stable")
        return cls(keys[order], order.astype(np.int64))

    def __len__(self) -> int:
        return len(self._keys)

    def save(self, path: Path) -> None:
        """One ``.npz`` file (written atomically) that ``load`` maps back without sorting."""
        tmp = path.with_name(f".{path.name}.tmp")
        width = self._keys.dtype.itemsize
        with open(tmp, "wb") as f:
            np.savez(f, keys=self._keys.view(np.uint8).reshape(-1, width), ids=self._ids)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> ExactIndex:
        with np.load(path) as data:
            return cls(_as_strings(data["keys"]), data["ids"])

    def search(self, queries: np.ndarray, radius: int = 0) -> tuple[np.ndarray, ...]:
        """All (query_row, entry_id, distance=0) pairs with equal values; radius is ignored."""
        q = _as_strings(queries)
        lo = np.searchsorted(self._keys, q, side="left")
        hi = np.searchsorted(self._keys, q, side="right")
        counts = hi - lo
        query_rows = np.repeat(np.arange(len(q)), counts)
        # Position of each hit inside [lo, hi) of its query, vectorised.
        starts = np.repeat(lo, counts)
        offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        entry_ids = self._ids[starts + offsets]
        return query_rows, entry_ids, np.zeros(len(entry_ids), dtype=np.int64)


def _as_strings(values: np.ndarray) -> np.ndarray:
    values = np.ascontiguousarray(values, dtype=np.uint8)
    return values.view(f"S{values.shape[1]}").ravel() if values.size else np.array([], "S1")
