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
from safeset.signals.pdq import MIN_MATCH_QUALITY, PDQResult


@dataclass(frozen=True)
class Match:
    list_name: str
    entry: int  # line number in the list file: auditable without copying the list's contents
    signal_type: str
    distance: int
    variant: int = 0  # which rotation/flip matched (0 = as stored)
    part: str = ""  # which stored file of the sample matched (its location or a part's name)
    # The matched list's own rules (HashList.action / role / cancels), for the policy.
    action: str | None = None
    role: str = "block"
    cancels: tuple[str, ...] = ()


@dataclass
class SampleSignals:
    """The hash signals of one sample's stored files that matching needs (errors may have none).

    ``exact`` holds (type name, raw digest, file); ``pdq`` (hash, quality, variant, file).
    """

    exact: list[tuple[str, bytes, str]] = field(default_factory=list)
    pdq: list[tuple[bytes, int, int, str]] = field(default_factory=list)

    def add_exact(self, hex_digests: dict[str, str], part: str) -> None:
        self.exact += [(t, bytes.fromhex(v), part) for t, v in hex_digests.items()]

    def add_pdq(self, variants: Sequence[PDQResult], part: str) -> None:
        self.pdq += [(v.hash, v.quality, n, part) for n, v in enumerate(variants)]


class Matcher:
    """One index per (list, signal type), built once per job or loaded prebuilt.

    Keeping lists apart (rather than merging them into one index per type) lets a list built
    once with ``safeset lists build`` be used as it is, whatever other lists join the scan.
    """

    def __init__(self, lists: Sequence[HashList], pdq_threshold: int = 31) -> None:
        self.pdq_threshold = pdq_threshold
        self._lists = list(lists)
        self._indexes = [
            {type_name: hl.index(type_name) for type_name in hl.values} for hl in self._lists
        ]
        # A list's own PDQ threshold (lists file) wins over the scan's.
        self._threshold = {
            hl.name: pdq_threshold if hl.pdq_threshold is None else hl.pdq_threshold
            for hl in self._lists
        }
        # With an allow list, matches are kept per stored file: an allow match on one file of
        # a sample must not hide a block match on another of its files.
        self._per_part = any(hl.role == "allow" for hl in self._lists)

    @property
    def signal_types(self) -> list[str]:
        return sorted({t for indexes in self._indexes for t in indexes})

    def match(self, batch: Sequence[SampleSignals]) -> list[list[Match]]:
        """For each sample, its best match per (list, signal type), closest first."""
        return self.match_with_near(batch, margin=0)[0]

    def match_with_near(
        self, batch: Sequence[SampleSignals], margin: int
    ) -> tuple[list[list[Match]], set[int]]:
        """Matches as ``match`` gives them, and the samples with a PDQ entry just past the
        threshold (within ``margin`` bits) on a list they do not match: worth a second look
        with a more precise hash before that entry is dismissed."""
        best: list[dict[tuple[str, str, str], Match]] = [{} for _ in batch]
        for type_name in self.signal_types:
            sample_of, variant_of, part_of, queries = self._queries(batch, type_name)
            if not len(queries):
                continue
            perceptual = SIGNAL_TYPES[type_name].perceptual
            for hl, indexes in zip(self._lists, self._indexes, strict=True):
                if type_name not in indexes:
                    continue
                radius = self._threshold[hl.name] + margin if perceptual else 0
                rows, ids, dists = indexes[type_name].search(queries, radius)
                lines = hl.lines[type_name]
                for row, entry, dist in zip(
                    rows.tolist(), ids.tolist(), dists.tolist(), strict=True
                ):
                    s = sample_of[row]
                    key = (hl.name, type_name, part_of[row] if self._per_part else "")
                    current = best[s].get(key)
                    if current is None or dist < current.distance:
                        best[s][key] = Match(
                            hl.name,
                            int(lines[entry]),
                            type_name,
                            dist,
                            variant_of[row],
                            part_of[row],
                            hl.action,
                            hl.role,
                            hl.cancels,
                        )
        near = {
            s
            for s, found in enumerate(best)
            if any(m.distance > self._threshold[m.list_name] for m in found.values())
        }
        matches = [
            sorted(
                (m for m in b.values() if m.distance <= self._threshold[m.list_name]),
                # Block matches first: the manifest names the first match as the one that counts.
                key=lambda m: (m.role == "allow", m.distance, m.list_name),
            )
            for b in best
        ]
        return matches, near

    @staticmethod
    def _queries(batch: Sequence[SampleSignals], type_name: str):
        sample_of: list[int] = []
        variant_of: list[int] = []
        part_of: list[str] = []
        blobs: list[bytes] = []
        for s, signals in enumerate(batch):
            if type_name == "pdq":
                found = [(v, q, n, p) for v, q, n, p in signals.pdq if q >= MIN_MATCH_QUALITY]
            else:
                found = [(v, 0, 0, p) for t, v, p in signals.exact if t == type_name]
            for value, _, variant, part in found:
                sample_of.append(s)
                variant_of.append(variant)
                part_of.append(part)
                blobs.append(value)
        width = SIGNAL_TYPES[type_name].nbytes
        queries = np.frombuffer(b"".join(blobs), dtype=np.uint8).reshape(-1, width)
        return sample_of, variant_of, part_of, queries
