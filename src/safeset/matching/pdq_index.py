"""Hamming-radius search over PDQ hashes (faiss flat placeholder for multi-index hashing)."""

from __future__ import annotations

import os
from pathlib import Path

import faiss
import numpy as np


class PDQIndex:
    def __init__(self, hashes: np.ndarray) -> None:
        self._hashes = np.ascontiguousarray(hashes, dtype=np.uint8).reshape(-1, 32)
        self._index = faiss.IndexBinaryFlat(256)
        if len(self._hashes):
            self._index.add(self._hashes)

    @classmethod
    def build(cls, hashes: np.ndarray) -> PDQIndex:
        return cls(hashes)

    def __reduce__(self):
        # faiss indexes cannot be pickled; the hashes can, and rebuilding a flat index from
        # them is a copy. Engines that ship the matcher to other processes (Ray) need this.
        return (type(self), (self._hashes,))

    def __len__(self) -> int:
        return len(self._hashes)

    def search(self, queries: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(queries, dtype=np.uint8).reshape(-1, 32)
        if not len(self) or not len(queries):
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, empty
        # faiss returns distances strictly below the radius it is given.
        lims, dist, ids = self._index.range_search(queries, radius + 1)
        rows = np.repeat(np.arange(len(queries)), np.diff(lims).astype(np.int64))
        order = np.lexsort((ids, dist, rows))
        return rows[order], ids[order].astype(np.int64), dist[order].astype(np.int64)

    def save(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as f:
            np.save(f, self._hashes)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> PDQIndex:
        return cls(np.load(path))
