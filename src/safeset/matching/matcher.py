"""Finding every list entry that a batch of samples' signals match.

All lists are merged into one index per signal type, built once per job; each index row
remembers which list and which line of that list it came from. Queries are batched per shard
so the PDQ index sees hundreds of queries per call rather than one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from safeset.lists import HashList
from safeset.signal_types import SIGNAL_TYPES
from safeset.signals.pdq import MIN_MATCH_QUALITY


@dataclass(frozen=True)
class Match:
    list_name: str
    entry: int  # line number in the list file: auditable without copying the list's contents
    signal_type: str
    distance: int
    variant: int = 0  # which rotation/flip matched (0 = as stored)


@dataclass
class SampleSignals:
    """The hash signals of one sample that matching needs (all optional: errors have none)."""

    exact: dict[str, bytes] = field(default_factory=dict)  # md5/sha1/sha256 raw digests
    pdq: list[tuple[bytes, int]] = field(default_factory=list)  # (hash, quality) per variant


@dataclass
class _TypeIndex:
    index: object
    owner: np.ndarray  # index row -> position in Matcher.list_names
    line: np.ndarray  # index row -> line number in that list


class Matcher:
    def __init__(self, lists: Sequence[HashList], pdq_threshold: int = 31) -> None:
        self.list_names = [hl.name for hl in lists]
        self.pdq_threshold = pdq_threshold
        self._indexes: dict[str, _TypeIndex] = {}
        for type_name, signal_type in SIGNAL_TYPES.items():
            parts = [(i, hl) for i, hl in enumerate(lists) if type_name in hl.values]
            if not parts:
                continue
            values = np.concatenate([hl.values[type_name] for _, hl in parts])
            owner = np.concatenate(
                [np.full(len(hl.values[type_name]), i, dtype=np.int32) for i, hl in parts]
            )
            line = np.concatenate([hl.lines[type_name] for _, hl in parts])
            self._indexes[type_name] = _TypeIndex(signal_type.build_index(values), owner, line)

    @property
    def signal_types(self) -> list[str]:
        return list(self._indexes)

    def match(self, batch: Sequence[SampleSignals]) -> list[list[Match]]:
        """For each sample, its best match per (list, signal type), closest first."""
        best: list[dict[tuple[int, str], Match]] = [{} for _ in batch]
        for type_name, ti in self._indexes.items():
            sample_of, variant_of, queries = self._queries(batch, type_name)
            if not len(queries):
                continue
            radius = self.pdq_threshold if SIGNAL_TYPES[type_name].perceptual else 0
            rows, ids, dists = ti.index.search(queries, radius)
            for row, entry, dist in zip(rows.tolist(), ids.tolist(), dists.tolist(), strict=True):
                s = sample_of[row]
                slot = (int(ti.owner[entry]), type_name)
                current = best[s].get(slot)
                if current is None or dist < current.distance:
                    best[s][slot] = Match(
                        self.list_names[slot[0]],
                        int(ti.line[entry]),
                        type_name,
                        dist,
                        variant_of[row],
                    )
        return [sorted(b.values(), key=lambda m: (m.distance, m.list_name)) for b in best]

    @staticmethod
    def _queries(batch: Sequence[SampleSignals], type_name: str):
        sample_of: list[int] = []
        variant_of: list[int] = []
        blobs: list[bytes] = []
        for s, signals in enumerate(batch):
            if type_name == "pdq":
                for v, (value, quality) in enumerate(signals.pdq):
                    if quality >= MIN_MATCH_QUALITY:
                        sample_of.append(s)
                        variant_of.append(v)
                        blobs.append(value)
            elif type_name in signals.exact:
                sample_of.append(s)
                variant_of.append(0)
                blobs.append(signals.exact[type_name])
        width = SIGNAL_TYPES[type_name].nbytes
        queries = np.frombuffer(b"".join(blobs), dtype=np.uint8).reshape(-1, width)
        return sample_of, variant_of, queries
