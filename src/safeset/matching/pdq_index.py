"""Exact Hamming-radius search over 256-bit PDQ hashes, by multi-index hashing.

Why: hash lists from child-protection programmes reach ten million PDQ entries, and an audit
asks for every entry within a radius (31 by default) of every image. Brute force costs one
256-bit popcount per entry per query. Multi-index hashing (Norouzi, Punjani & Fleet, "Fast
Search in Hamming Space with Multi-Index Hashing", CVPR 2012) cuts the 256 bits into m disjoint
substrings and leans on the pigeonhole principle: if d(q, e) <= r and the per-substring probe
radii k_j satisfy sum_j (k_j + 1) >= r + 1, then some substring j has d_j(q, e) <= k_j. Probing
every substring table within its k_j therefore yields a superset of the answer, and a full
256-bit popcount of each candidate removes the rest: the result is exact, never approximate.

Layout (plain numpy arrays, so a saved index can be memory-mapped):

- ``head`` and ``tail``: (N, 16) uint8, the first and the last 128 bits of each entry, viewed as
  (N, 2) uint64 words for popcounts. A candidate is checked on its head first: the head distance
  is a lower bound of the full one, and a random entry lies within 31 bits of a query on 128
  bits with probability ~1e-9, so almost only true neighbours cost a second gather (the tail).
  Gathering 16 bytes instead of 32 per candidate makes the search ~15% faster at no memory cost;
- for each substring j of width w_j, a CSR table: ``ids_j`` holds the entry ids sorted by their
  substring value, and the ids whose value is v are ``ids_j[offsets_j[v]:offsets_j[v + 1]]``.

Dense offset tables beat hash maps here because a probe is then one gather; the width is
capped at 24 bits so that one table stays <= 64 MiB.

The search is bound by random memory reads, about three per probe (a bucket's bounds, its ids,
each candidate's hash). ``_mih.c`` probes and verifies in one compiled pass, prefetching a
few hundred probes' reads at a time (~1.6x numpy's passes at 10M entries); where it was not
built (no C compiler) numpy does the same work, with the same results.

Hash-list contents are sensitive: nothing in this module prints or logs a hash, and error
messages name shapes and counts only.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

import numpy as np

__all__ = ["HASH_BITS", "HASH_BYTES", "PDQIndex", "Strategy"]

HASH_BYTES = 32
HASH_BITS = 256
_HALF = HASH_BYTES // 2

# Substring widths: about log2(N) bits each (one entry per substring value), within these bounds.
_MIN_WIDTH = 8
_MAX_WIDTH = 24

# Cost model, in nanoseconds of one core (fitted on this module's timings at 5k-10M entries,
# radii 16-64). Only the ratios matter: they split the radius among substrings and pick
# multi-index probing or brute force for each search.
_PROBE_NS = 15.0  # one substring-table lookup
_CANDIDATE_NS = 25.0  # gathering and verifying one candidate
_BRUTE_NS = 15.0  # one (query, entry) comparison in the brute-force scan
_QUERY_OVERHEAD_NS = 100.0  # numpy call overhead per query and probed substring, amortised

# Memory bounds for temporaries: work per query batch, candidates expanded at once (protects
# against lists with huge buckets), and (query, entry) pairs compared at once by brute force.
_BATCH_WORK = 1 << 20
_CHUNK_CANDIDATES = 1 << 22
_BRUTE_PAIRS = 1 << 20

_MAGIC = b"SAFESET-PDQIDX\x00\x01"
_FORMAT = "safeset.pdq_index"
_VERSION = 1
_ALIGN = 4096
_HEADER_RESERVE = 1 << 16  # bytes before the first array; the JSON header is ~3 KiB

Strategy = Literal["auto", "mih", "brute"]
Pairs = tuple[np.ndarray, np.ndarray, np.ndarray]

try:  # the probe loop compiled (setup.py builds it where a C compiler is present)
    from safeset.matching import _mih
except ImportError:  # numpy alone: the same results
    _mih = None


def _native_int32(array: np.ndarray) -> bool:
    return array.dtype == np.dtype(np.int32) and array.flags.c_contiguous


_BYTE_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def _bit_counts_lut(x: np.ndarray) -> np.ndarray:
    """Per-element popcount through a byte lookup table (numpy < 2 has no bitwise_count)."""
    x = np.ascontiguousarray(x)
    per_byte = _BYTE_POPCOUNT[x.view(np.uint8)].reshape(*x.shape, x.dtype.itemsize)
    return per_byte.sum(axis=-1, dtype=np.uint8)


_bit_counts = getattr(np, "bitwise_count", _bit_counts_lut)


def _half_distances(x: np.ndarray) -> np.ndarray:
    """Hamming weight of each row of a (C, 2) uint64 array of XORed half-hashes, as uint16.

    The two per-word counts (each <= 64) are added as the bytes of one uint16 (a SWAR add):
    summing a (C, 2) uint8 array along axis 1 is several times slower.
    """
    counts = np.ascontiguousarray(_bit_counts(x), dtype=np.uint8)
    packed = counts.view(np.uint16).reshape(-1)
    return (packed & np.uint16(0xFF)) + (packed >> np.uint16(8))


def _check_hashes(array: np.ndarray, what: str) -> np.ndarray:
    """Return `array` as a C-contiguous (N, 32) uint8 array, or raise naming the shape only."""
    arr = np.asarray(array)
    if arr.dtype != np.uint8 or arr.ndim != 2 or arr.shape[1] != HASH_BYTES:
        raise ValueError(
            f"{what} must be a (N, {HASH_BYTES}) uint8 array, got shape {arr.shape} "
            f"and dtype {arr.dtype}"
        )
    return np.ascontiguousarray(arr)


def _halves(hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 2) uint64 views of the first and last 16 bytes of each hash (copies if needed).

    XOR and popcount do not depend on byte order, so native uint64 words are fine.
    """
    head = np.ascontiguousarray(hashes[:, :_HALF]).view(np.uint64)
    tail = np.ascontiguousarray(hashes[:, _HALF:]).view(np.uint64)
    return head, tail


def _substring_widths(n: int) -> tuple[int, ...]:
    """Split the 256 bits into m near-equal widths, m ~ 256 / log2(n).

    With w ~ log2(n) bits per substring each substring value holds about one entry, which is
    the paper's balance between table probes (grow with w) and candidates (shrink with w).
    """
    m = round(HASH_BITS / math.log2(max(n, 2)))
    m = min(max(m, math.ceil(HASH_BITS / _MAX_WIDTH)), HASH_BITS // _MIN_WIDTH)
    base, extra = divmod(HASH_BITS, m)
    return tuple(base + 1 if j < extra else base for j in range(m))


def _substring_starts(widths: Sequence[int]) -> tuple[int, ...]:
    """First bit of each substring; substrings are contiguous and cover all 256 bits."""
    return tuple(int(s) for s in np.cumsum([0, *widths[:-1]]))


def _substring_values(hashes: np.ndarray, start: int, width: int) -> np.ndarray:
    """Bits [start, start + width) of each hash as uint32, bit 0 being the MSB of byte 0.

    This is the bit order of ``np.packbits`` and of ``bytes.fromhex(pdq_hex)``. A substring
    of <= 25 bits spans at most 4 bytes, so a uint32 accumulator cannot overflow.
    """
    first, last = start // 8, (start + width - 1) // 8
    if width > 25 or last >= HASH_BYTES:
        raise ValueError(f"substring [{start}, {start + width}) is out of range")
    acc = np.zeros(len(hashes), dtype=np.uint32)
    for column in range(first, last + 1):
        acc <<= np.uint32(8)
        acc |= hashes[:, column]
    acc >>= np.uint32((last + 1) * 8 - (start + width))
    acc &= np.uint32((1 << width) - 1)
    return acc


def _build_table(values: np.ndarray, width: int, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """CSR table of one substring: ids sorted by substring value (ties by id, so deterministic).

    Sorting packed ``value << 32 | id`` uint64 keys is about five times faster than a stable
    argsort of the values, which keeps a 10M-entry build well under a minute.
    """
    n = len(values)
    offsets = np.zeros((1 << width) + 1, dtype=dtype)
    offsets[1:] = np.cumsum(np.bincount(values, minlength=1 << width))
    if n < (1 << 32):
        keys = values.astype(np.uint64) << np.uint64(32)
        keys |= np.arange(n, dtype=np.uint64)
        keys.sort()
        ids = (keys & np.uint64(0xFFFFFFFF)).astype(dtype)
    else:
        ids = np.argsort(values, kind="stable").astype(dtype)
    return offsets, ids


def _ball_size(width: int, radius: int) -> int:
    """Number of width-bit values within `radius` bits of a given one."""
    return sum(math.comb(width, i) for i in range(min(radius, width) + 1))


@functools.lru_cache(maxsize=128)
def _ball_masks(width: int, radius: int) -> np.ndarray:
    """All width-bit XOR masks of weight <= radius, lightest first (read-only: it is cached)."""
    values = np.arange(1 << width, dtype=np.uint32)
    weights = _bit_counts(values)
    inside = weights <= radius
    masks = values[inside][np.argsort(weights[inside], kind="stable")]
    masks.setflags(write=False)
    return masks


def _substring_cost(width: int, units: int, n: int) -> float:
    """Modelled ns per query of probing one substring with `units` - 1 bits (0 units: skipped)."""
    if units == 0:
        return 0.0
    probes = _ball_size(width, units - 1)
    candidates = probes * n / float(1 << width)
    return probes * _PROBE_NS + candidates * _CANDIDATE_NS + _QUERY_OVERHEAD_NS


@functools.lru_cache(maxsize=256)
def _plan_units(widths: tuple[int, ...], n: int, radius: int) -> tuple[int, ...]:
    """Split radius + 1 'units' among the substrings; substring j is probed within units_j - 1.
    Cached: a scan searches one index at one radius batch after batch.

    Any split with sum(units) = radius + 1 is exact (pigeonhole: an entry missed everywhere has
    d_j >= units_j on every substring, so d >= radius + 1). Units go one at a time to the
    substring whose modelled cost grows least. A substring saturates at width + 1 units, when
    its probe ball already covers all 2**width values; 256 + m units exist, so a split exists
    for every radius <= 256.
    """
    units = [0] * len(widths)
    for _ in range(radius + 1):
        best, best_delta = -1, math.inf
        for j, width in enumerate(widths):
            if units[j] > width:
                continue
            delta = _substring_cost(width, units[j] + 1, n) - _substring_cost(width, units[j], n)
            if delta < best_delta:
                best, best_delta = j, delta
        units[best] += 1
    return tuple(units)


def _empty_pairs() -> Pairs:
    return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int32)


def _sort_pairs(rows: np.ndarray, ids: np.ndarray, dists: np.ndarray, *, dedupe: bool) -> Pairs:
    """Order pairs by (query row, distance, entry id); optionally drop repeated pairs.

    Multi-index probing can find one entry through several substrings; a repeated pair has the
    same distance, so after sorting its copies are adjacent.
    """
    rows, ids, dists = rows.astype(np.int64), ids.astype(np.int64), dists.astype(np.int32)
    order = np.lexsort((ids, dists, rows))
    rows, ids, dists = rows[order], ids[order], dists[order]
    if dedupe and len(rows) > 1:
        fresh = np.ones(len(rows), dtype=bool)
        fresh[1:] = (rows[1:] != rows[:-1]) | (ids[1:] != ids[:-1])
        rows, ids, dists = rows[fresh], ids[fresh], dists[fresh]
    return rows, ids, dists


def _concat_pairs(parts: Sequence[Pairs]) -> Pairs:
    if not parts:
        return _empty_pairs()
    return tuple(np.concatenate(column) for column in zip(*parts, strict=True))  # type: ignore[return-value]


def _check_radius(radius: int) -> int:
    """Radii above 256 behave as 256 (every pair matches); negative radii are an error."""
    if isinstance(radius, bool) or not isinstance(radius, int | np.integer):
        raise TypeError(f"radius must be an int, got {type(radius).__name__}")
    if radius < 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    return min(int(radius), HASH_BITS)


def _align(offset: int) -> int:
    return -(-offset // _ALIGN) * _ALIGN


class PDQIndex:
    """Exact index of PDQ hashes for Hamming-radius queries; entry ids are row numbers.

    Build with :meth:`build` or :meth:`load`; the constructor takes the ready-made tables.
    """

    def __init__(
        self,
        head: np.ndarray,
        tail: np.ndarray,
        widths: Sequence[int],
        offsets: Sequence[np.ndarray],
        ids: Sequence[np.ndarray],
    ) -> None:
        self._head_bytes, self._tail_bytes = head, tail
        self._head, self._tail = head.view(np.uint64), tail.view(np.uint64)
        self._widths = tuple(int(w) for w in widths)
        self._starts = _substring_starts(self._widths)
        self._offsets = list(offsets)
        self._ids = list(ids)
        # Tables the compiled loop can search (int32 ids: lists under 2**31 entries).
        halves = self._head.flags.c_contiguous and self._tail.flags.c_contiguous
        self._compilable = [
            halves and _native_int32(o) and _native_int32(i)
            for o, i in zip(self._offsets, self._ids, strict=True)
        ]

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def build(cls, hashes: np.ndarray) -> PDQIndex:
        """Index (N, 32) uint8 hashes (MSB-first bytes, as ``bytes.fromhex`` gives them)."""
        hashes = _check_hashes(hashes, "hashes")
        widths = _substring_widths(len(hashes))
        dtype = np.dtype(np.int32 if len(hashes) < np.iinfo(np.int32).max else np.int64)
        offsets, ids = [], []
        for start, width in zip(_substring_starts(widths), widths, strict=True):
            table = _build_table(_substring_values(hashes, start, width), width, dtype)
            offsets.append(table[0])
            ids.append(table[1])
        head, tail = hashes[:, :_HALF].copy(), hashes[:, _HALF:].copy()
        return cls(head, tail, widths, offsets, ids)

    def __len__(self) -> int:
        return len(self._head)

    def __repr__(self) -> str:
        return f"PDQIndex(entries={len(self)}, substrings={len(self._widths)})"

    @property
    def substring_widths(self) -> tuple[int, ...]:
        """Widths in bits of the substrings (they sum to 256)."""
        return self._widths

    @property
    def nbytes(self) -> int:
        """Bytes held by the index arrays (hashes plus substring tables)."""
        tables = sum(a.nbytes for a in self._offsets) + sum(a.nbytes for a in self._ids)
        return int(self._head.nbytes + self._tail.nbytes + tables)

    # -- search -------------------------------------------------------------------------------

    def search(
        self,
        queries: np.ndarray,
        radius: int,
        *,
        strategy: Strategy = "auto",
        exact_radius: int | None = None,
    ) -> Pairs:
        """All (query_row, entry_id, distance) with Hamming distance <= radius (inclusive).

        Returns three equal-length arrays (int64, int64, int32) sorted by (query_row, distance,
        entry_id). Exact whatever the strategy: "auto" picks multi-index probing or a brute
        force popcount scan from the modelled cost of this radius; "mih" and "brute" force one.

        With ``exact_radius`` below ``radius`` the search is two-radius: every pair within
        ``exact_radius`` is returned, and of the pairs in (exact_radius, radius] those that the
        probes planned for ``exact_radius`` meet (an entry is met when one substring lies within
        its probe radius: at 10M entries, exact to 32, ~99% of the entries at 39). Probing costs
        grow steeply with the radius (the probe balls jump from 277 to 2,048-2,325 values per
        table between radius 32 and 33 at 10M entries), verifying does not: a wide outer band
        then costs next to nothing. Brute force, when cheaper, is exact to ``radius``.
        """
        queries = _check_hashes(queries, "queries")
        radius = _check_radius(radius)
        planned = radius if exact_radius is None else min(_check_radius(exact_radius), radius)
        if strategy not in ("auto", "mih", "brute"):
            raise ValueError(f"unknown strategy {strategy!r}")
        if len(queries) == 0 or len(self) == 0:
            return _empty_pairs()
        units = _plan_units(self._widths, len(self), planned)
        if strategy == "auto":
            strategy = "mih" if self._mih_cost(units) < len(self) * _BRUTE_NS else "brute"
        if strategy == "mih":
            parts = list(self._search_mih(queries, radius, units))
        else:
            parts = list(self._search_brute(queries, radius))
        return _concat_pairs(parts)

    def _mih_cost(self, units: Sequence[int]) -> float:
        n = len(self)
        return sum(_substring_cost(w, u, n) for w, u in zip(self._widths, units, strict=True))

    def _search_mih(
        self, queries: np.ndarray, radius: int, units: Sequence[int]
    ) -> Iterator[Pairs]:
        """Probe each substring table within its radius, for batches of queries at once."""
        probed = [(j, u - 1) for j, u in enumerate(units) if u > 0]
        values = {
            j: _substring_values(queries, self._starts[j], self._widths[j]) for j, _ in probed
        }
        heads, tails = _halves(queries)
        n = len(self)
        work = sum(
            _ball_size(self._widths[j], k) * (1 + n / (1 << self._widths[j])) for j, k in probed
        )
        batch = int(min(max(_BATCH_WORK // max(work, 1), 1), len(queries)))
        for first in range(0, len(queries), batch):
            last = min(first + batch, len(queries))
            parts = [
                self._probe(
                    j, k, values[j][first:last], heads[first:last], tails[first:last], radius
                )
                for j, k in probed
            ]
            rows, ids, dists = _concat_pairs(parts)
            yield _sort_pairs(rows + first, ids, dists, dedupe=True)

    def _probe(
        self,
        j: int,
        k: int,
        values: np.ndarray,
        heads: np.ndarray,
        tails: np.ndarray,
        radius: int,
    ) -> Pairs:
        """Entries whose substring j lies within k bits of each query's, verified on 256 bits."""
        keys = values[:, None] ^ _ball_masks(self._widths[j], k)[None, :]
        if _mih is not None and self._compilable[j]:
            return self._probe_compiled(j, keys, heads, tails, radius)
        offsets = self._offsets[j]
        try:
            starts = np.take(offsets, keys)
            counts = np.take(offsets, keys + np.uint32(1)) - starts
            return self._verify(j, starts, counts, heads, tails, radius)
        except (IndexError, ValueError):  # a damaged saved index: its tables point outside it
            raise ValueError("corrupt PDQ index (a table points outside it)") from None

    def _probe_compiled(
        self, j: int, keys: np.ndarray, heads: np.ndarray, tails: np.ndarray, radius: int
    ) -> Pairs:
        """``_probe`` by the compiled loop (``_mih.c``): the same pairs, in one pass."""
        keys = np.ascontiguousarray(keys, dtype=np.uint32)
        heads, tails = np.ascontiguousarray(heads), np.ascontiguousarray(tails)
        capacity = max(256, 4 * len(heads))
        while True:  # hits are rare; a list of near-duplicates may need a second, larger try
            rows = np.empty(capacity, np.int64)
            entries = np.empty(capacity, np.int64)
            dists = np.empty(capacity, np.int32)
            args = (self._offsets[j], self._ids[j], self._head, self._tail, keys, heads, tails)
            found = _mih.probe(*args, radius, rows, entries, dists)
            if found <= capacity:
                return rows[:found], entries[:found], dists[:found]
            capacity = found

    def _verify(
        self,
        j: int,
        starts: np.ndarray,
        counts: np.ndarray,
        heads: np.ndarray,
        tails: np.ndarray,
        radius: int,
    ) -> Pairs:
        """Expand (queries x probes) CSR ranges into candidates and keep those within radius.

        Splits the query batch when the candidates would not fit the chunk bound, so a list
        with huge buckets (many near-identical hashes) cannot exhaust memory.
        """
        total = int(counts.sum())
        if total > _CHUNK_CANDIDATES and len(starts) > 1:
            h = len(starts) // 2
            top = self._verify(j, starts[:h], counts[:h], heads[:h], tails[:h], radius)
            low = self._verify(j, starts[h:], counts[h:], heads[h:], tails[h:], radius)
            return _concat_pairs([top, (low[0] + h, low[1], low[2])])
        starts, counts = starts.ravel(), counts.ravel()
        if total > _CHUNK_CANDIDATES:
            return self._verify_chunked(j, starts, counts, heads[0], tails[0], radius)
        ends = np.cumsum(counts, dtype=starts.dtype)  # int32 unless the list has >= 2**31 entries
        positions = np.repeat(starts - (ends - counts), counts)
        positions += np.arange(total, dtype=positions.dtype)
        entries = np.take(self._ids[j], positions)
        row_ends = ends.reshape(len(heads), -1)[:, -1]
        query_heads = np.repeat(heads, np.diff(row_ends, prepend=0), axis=0)
        head_dists = _half_distances(np.take(self._head, entries, axis=0) ^ query_heads)
        close = np.flatnonzero(head_dists <= radius)
        rows = np.searchsorted(row_ends, close, side="right")
        return self._finish(rows, entries[close], head_dists[close], tails, radius)

    def _finish(
        self,
        rows: np.ndarray,
        entries: np.ndarray,
        head_dists: np.ndarray,
        tails: np.ndarray,
        radius: int,
    ) -> Pairs:
        """Add the tail distance to candidates that passed the head check; keep those in radius."""
        dists = head_dists + _half_distances(np.take(self._tail, entries, axis=0) ^ tails[rows])
        keep = np.flatnonzero(dists <= radius)
        return rows[keep], entries[keep], dists[keep]

    def _verify_chunked(
        self,
        j: int,
        starts: np.ndarray,
        counts: np.ndarray,
        head: np.ndarray,
        tail: np.ndarray,
        radius: int,
    ) -> Pairs:
        """One query's candidates, in chunks of _CHUNK_CANDIDATES (slow path for huge buckets)."""
        ends = np.cumsum(counts, dtype=np.int64)
        parts = []
        for first in range(0, int(ends[-1]), _CHUNK_CANDIDATES):
            index = np.arange(first, min(first + _CHUNK_CANDIDATES, int(ends[-1])))
            probe = np.searchsorted(ends, index, side="right")
            entries = np.take(self._ids[j], starts[probe] + index - (ends[probe] - counts[probe]))
            head_dists = _half_distances(np.take(self._head, entries, axis=0) ^ head)
            close = np.flatnonzero(head_dists <= radius)
            rows = np.zeros(len(close), dtype=np.int64)
            parts.append(
                self._finish(rows, entries[close], head_dists[close], tail[None, :], radius)
            )
        return _concat_pairs(parts)

    def _search_brute(self, queries: np.ndarray, radius: int) -> Iterator[Pairs]:
        """Compare every query with every entry, in blocks of about _BRUTE_PAIRS pairs."""
        heads, tails = _halves(queries)
        n = len(self)
        q_block = max(1, min(len(queries), _BRUTE_PAIRS // n))
        e_block = max(1, min(n, _BRUTE_PAIRS // q_block))
        for q0 in range(0, len(queries), q_block):
            q_heads = heads[q0 : q0 + q_block, None, :]
            q_tails = tails[q0 : q0 + q_block, None, :]
            parts = []
            for e0 in range(0, n, e_block):
                head = self._head[None, e0 : e0 + e_block, :] ^ q_heads
                tail = self._tail[None, e0 : e0 + e_block, :] ^ q_tails
                dists = _half_distances(head.reshape(-1, 2)) + _half_distances(tail.reshape(-1, 2))
                hits = np.flatnonzero(dists <= radius)
                width = head.shape[1]
                parts.append((hits // width + q0, hits % width + e0, dists[hits]))
            yield _sort_pairs(*_concat_pairs(parts), dedupe=False)

    # -- persistence --------------------------------------------------------------------------

    def _arrays(self) -> dict[str, np.ndarray]:
        arrays = {"head": self._head_bytes, "tail": self._tail_bytes}
        for j, (offsets, ids) in enumerate(zip(self._offsets, self._ids, strict=True)):
            arrays[f"offsets_{j}"] = offsets
            arrays[f"ids_{j}"] = ids
        return arrays

    def save(self, path: Path) -> None:
        """Write the index to one file, atomically (temporary file, fsync, os.replace).

        Format: 16-byte magic, 8-byte little-endian header length, JSON header (array names,
        dtypes, shapes, offsets), then each array's bytes at a 4096-aligned offset, so that
        :meth:`load` can memory-map them without copying.
        """
        path = Path(path)
        arrays = {name: np.ascontiguousarray(a) for name, a in self._arrays().items()}
        entries: dict[str, dict] = {}
        position = _HEADER_RESERVE
        for name, array in arrays.items():
            position = _align(position)
            entries[name] = {
                "dtype": array.dtype.newbyteorder("<").str,
                "shape": list(array.shape),
                "offset": position,
            }
            position += array.nbytes
        header = json.dumps(
            {
                "format": _FORMAT,
                "version": _VERSION,
                "entries": len(self),
                "widths": list(self._widths),
                "arrays": entries,
            },
        ).encode()
        if len(_MAGIC) + 8 + len(header) > _HEADER_RESERVE:
            raise ValueError("index header too large")
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as f:
                f.write(_MAGIC + len(header).to_bytes(8, "little") + header)
                for name, array in arrays.items():
                    f.write(b"\0" * (entries[name]["offset"] - f.tell()))
                    f.write(array.astype(array.dtype.newbyteorder("<"), copy=False).data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: Path, *, mmap: bool = True) -> PDQIndex:
        """Open an index written by :meth:`save`.

        With ``mmap`` (default) the arrays are memory-mapped read-only: loading takes
        milliseconds and pages come in as searches touch them. ``mmap=False`` reads the whole
        file into memory instead (slower to load; faster first searches).
        """
        path = Path(path)
        with open(path, "rb") as f:
            if f.read(len(_MAGIC)) != _MAGIC:
                raise ValueError(f"{path.name} is not a safeset PDQ index file")
            header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
        if header.get("format") != _FORMAT or header.get("version") != _VERSION:
            raise ValueError(f"{path.name}: unsupported PDQ index format or version")
        size = path.stat().st_size
        buffer = np.memmap(path, dtype=np.uint8, mode="r") if mmap else np.fromfile(path, np.uint8)
        if len(buffer) != size:
            raise ValueError(f"{path.name}: file size changed while loading")
        arrays = {
            name: _array_from_buffer(buffer, spec, name) for name, spec in header["arrays"].items()
        }
        return cls._from_arrays(header, arrays, path.name)

    @classmethod
    def _from_arrays(cls, header: dict, arrays: dict[str, np.ndarray], name: str) -> PDQIndex:
        """Check the header and arrays agree before trusting them, then assemble the index."""
        n, widths = int(header["entries"]), [int(w) for w in header["widths"]]
        if sum(widths) != HASH_BITS or not all(1 <= w <= _MAX_WIDTH for w in widths):
            raise ValueError(f"{name}: corrupt PDQ index (substring widths)")
        head, tail = arrays.get("head"), arrays.get("tail")
        for half in (head, tail):
            if half is None or half.shape != (n, _HALF) or half.dtype != np.uint8:
                raise ValueError(f"{name}: corrupt PDQ index (hashes)")
        offsets, ids = [], []
        for j, width in enumerate(widths):
            off, idx = arrays.get(f"offsets_{j}"), arrays.get(f"ids_{j}")
            if (
                off is None
                or idx is None
                or off.shape != ((1 << width) + 1,)
                or idx.shape != (n,)
                or off.dtype.kind != "i"
                or idx.dtype.kind != "i"
                or off[0] != 0
                or off[-1] != n
            ):
                raise ValueError(f"{name}: corrupt PDQ index (table {j})")
            offsets.append(off)
            ids.append(idx)
        return cls(head, tail, widths, offsets, ids)


def _array_from_buffer(buffer: np.ndarray, spec: dict, name: str) -> np.ndarray:
    """A view of one array inside the loaded file, bounds-checked against the file size."""
    dtype = np.dtype(spec["dtype"])
    shape = tuple(int(s) for s in spec["shape"])
    start = int(spec["offset"])
    stop = start + dtype.itemsize * math.prod(shape)
    if start < 0 or stop > len(buffer):
        raise ValueError(f"corrupt PDQ index: array {name} lies outside the file")
    return np.asarray(buffer[start:stop]).view(dtype).reshape(shape)
