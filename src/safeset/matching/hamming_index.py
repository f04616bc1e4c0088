"""Exhaustive Hamming search over values of any width: the default index of perceptual types.

PDQ has its own multi-index hashing index (``pdq_index``), built for lists of millions; a new
perceptual type starts with this one, which compares every query with every entry in chunks
(numpy's XOR and bit count), exact at any radius, fine for lists up to a few hundred thousand.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

# Query x entry byte comparisons per chunk: bounds the temporary arrays to ~64 MB.
CHUNK_BYTES = 64 << 20


class HammingIndex:
    def __init__(self, values: np.ndarray) -> None:
        self._values = np.ascontiguousarray(values, dtype=np.uint8)

    @classmethod
    def build(cls, values: np.ndarray) -> HammingIndex:
        return cls(values)

    def __len__(self) -> int:
        return len(self._values)

    def search(self, queries: np.ndarray, radius: int) -> tuple[np.ndarray, ...]:
        """(query_row, entry_id, distance) of every pair within ``radius`` bits."""
        queries = np.ascontiguousarray(queries, dtype=np.uint8)
        width = max(1, self._values.shape[1] if self._values.ndim == 2 else 1)
        step = max(1, CHUNK_BYTES // max(1, len(self._values) * width))
        parts: list[tuple[np.ndarray, ...]] = []
        for start in range(0, len(queries), step):
            block = queries[start : start + step]
            dists = np.bitwise_count(block[:, None, :] ^ self._values[None, :, :]).sum(axis=2)
            rows, ids = np.nonzero(dists <= radius)
            parts.append((rows + start, ids, dists[rows, ids]))
        if not parts:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, empty
        return tuple(np.concatenate([p[i] for p in parts]).astype(np.int64) for i in range(3))

    def save(self, path: Path) -> None:
        tmp = path.with_name(f".{path.name}.tmp")
        with open(tmp, "wb") as f:
            np.save(f, self._values)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> HammingIndex:
        return cls(np.load(path, mmap_mode="r"))
