"""Exactness of the PDQ Hamming-radius index against an independent brute force.

The reference below computes distances with a byte lookup table over uint8 XORs, a different
route from the index's uint64 popcounts, so a shared bug cannot hide in both.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from safeset.matching import pdq_index
from safeset.matching.pdq_index import PDQIndex

from .support import CONFORMANCE

# Every test here runs with the compiled loops and with numpy alone (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("compiled_loops")

REG_TEST_INPUT = CONFORMANCE / "reg-test-input"

RADII = [0, 1, 15, 31, 32, 48]
SIZES = [0, 1, 5, 1000, 50_000]
STRATEGIES = ["auto", "mih", "brute"]

_BYTE_BITS = np.array([bin(i).count("1") for i in range(256)], dtype=np.int32)


def distance_matrix(queries: np.ndarray, entries: np.ndarray) -> np.ndarray:
    """(Q, N) Hamming distances through a per-byte lookup table."""
    out = np.empty((len(queries), len(entries)), dtype=np.int32)
    for q0 in range(0, len(queries), 8):
        xor = queries[q0 : q0 + 8, None, :] ^ entries[None, :, :]
        out[q0 : q0 + 8] = _BYTE_BITS[xor].sum(axis=2)
    return out


def pairs_within(distances: np.ndarray, radius: int) -> tuple[np.ndarray, ...]:
    rows, ids = np.nonzero(distances <= radius)
    dists = distances[rows, ids]
    order = np.lexsort((ids, dists, rows))
    return rows[order], ids[order], dists[order]


def flip_bits(rng: np.random.Generator, hashes: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Copies of `hashes` with counts[i] distinct random bits flipped in row i."""
    bits = np.unpackbits(hashes, axis=1)
    for row, count in enumerate(counts):
        bits[row, rng.choice(256, size=int(count), replace=False)] ^= 1
    return np.packbits(bits, axis=1)


def assert_same_pairs(got: tuple[np.ndarray, ...], expected: tuple[np.ndarray, ...]) -> None:
    assert len(got) == 3
    assert len(got[0]) == len(got[1]) == len(got[2])
    for got_column, expected_column in zip(got, expected, strict=True):
        np.testing.assert_array_equal(got_column, expected_column)


@functools.cache
def planted_case(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, PDQIndex]:
    """Random entries (with duplicated rows) and queries: some planted near entries, some random.

    Planted queries sit 0..60 bits from a random entry, so every tested radius has matches on
    both sides of its boundary. Returns entries, queries, sources of the planted queries (-1 for
    random ones), the reference distance matrix, and the built index.
    """
    rng = np.random.default_rng(n)
    entries = rng.integers(0, 256, size=(n, 32), dtype=np.uint8)
    if n >= 5:
        entries[-2:] = entries[:2]  # duplicates are separate entries
    n_queries = 120 if n >= 1000 else 40
    queries = rng.integers(0, 256, size=(n_queries, 32), dtype=np.uint8)
    sources = np.full(n_queries, -1)
    if n:
        planted = n_queries * 3 // 4
        sources[:planted] = rng.integers(0, n, size=planted)
        flips = rng.integers(0, 61, size=planted)
        queries[:planted] = flip_bits(rng, entries[sources[:planted]], flips)
    return entries, queries, sources, distance_matrix(queries, entries), PDQIndex.build(entries)


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("radius", RADII)
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_matches_brute_force(n: int, radius: int, strategy: str) -> None:
    _, queries, _, distances, index = planted_case(n)
    assert len(index) == n
    got = index.search(queries, radius, strategy=strategy)
    assert_same_pairs(got, pairs_within(distances, radius))


@pytest.mark.parametrize("radius", [31, 48])
def test_planted_neighbours_are_found(radius: int) -> None:
    _, queries, sources, distances, index = planted_case(50_000)
    rows, ids, _ = index.search(queries, radius)
    found = set(zip(rows.tolist(), ids.tolist(), strict=True))
    planted = [(q, int(s)) for q, s in enumerate(sources) if s >= 0 and distances[q, s] <= radius]
    assert planted, "the case must plant neighbours within the radius"
    assert all(pair in found for pair in planted)


def test_results_are_sorted_and_typed() -> None:
    _, queries, _, _, index = planted_case(1000)
    rows, ids, dists = index.search(queries, 48)
    assert rows.dtype.kind == ids.dtype.kind == dists.dtype.kind == "i"
    keys = list(zip(rows.tolist(), dists.tolist(), ids.tolist(), strict=True))
    assert keys == sorted(keys)
    assert len(set(zip(rows.tolist(), ids.tolist(), strict=True))) == len(rows)


def test_radius_is_inclusive_up_to_256() -> None:
    rng = np.random.default_rng(7)
    entry = rng.integers(0, 256, size=(1, 32), dtype=np.uint8)
    index = PDQIndex.build(entry)
    opposite = ~entry  # every bit differs: a naive uint8 sum of word counts wraps to 0 here
    for strategy in STRATEGIES:
        assert len(index.search(opposite, 255, strategy=strategy)[0]) == 0
        rows, ids, dists = index.search(opposite, 256, strategy=strategy)
        assert (rows.tolist(), ids.tolist(), dists.tolist()) == ([0], [0], [256])
        assert index.search(opposite, 10_000, strategy=strategy)[2].tolist() == [256]
    for flips in (0, 1, 30, 31, 32, 100):
        query = flip_bits(rng, entry, np.array([flips]))
        assert len(index.search(query, flips)[0]) == 1
        if flips:
            assert len(index.search(query, flips - 1)[0]) == 0


def test_huge_buckets_are_chunked(monkeypatch: pytest.MonkeyPatch) -> None:
    """A list of near-identical hashes puts everything in few buckets; chunking must stay exact."""
    monkeypatch.setattr(pdq_index, "_CHUNK_CANDIDATES", 7)
    monkeypatch.setattr(pdq_index, "_BATCH_WORK", 64)
    rng = np.random.default_rng(3)
    base = rng.integers(0, 256, size=(1, 32), dtype=np.uint8)
    entries = flip_bits(rng, np.repeat(base, 300, axis=0), rng.integers(0, 40, size=300))
    queries = flip_bits(rng, np.repeat(base, 9, axis=0), rng.integers(0, 40, size=9))
    index = PDQIndex.build(entries)
    distances = distance_matrix(queries, entries)
    for radius in (0, 20, 31, 64):
        assert_same_pairs(
            index.search(queries, radius, strategy="mih"), pairs_within(distances, radius)
        )


@st.composite
def hash_sets(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, int]:
    """Entries and queries derived from a few seeds, so near neighbours and duplicates occur."""
    seeds = draw(st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=4))
    base = np.frombuffer(b"".join(seeds), dtype=np.uint8).reshape(-1, 32)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))

    def derive(count: int, max_flips: int) -> np.ndarray:
        picks = base[rng.integers(0, len(base), size=count)]
        return flip_bits(rng, picks, rng.integers(0, max_flips + 1, size=count))

    entries = derive(draw(st.integers(0, 60)), draw(st.integers(0, 80)))
    queries = derive(draw(st.integers(0, 12)), draw(st.integers(0, 80)))
    radius = draw(st.one_of(st.integers(0, 64), st.integers(0, 300)))
    return entries, queries, radius


@settings(
    max_examples=80,
    deadline=None,
    # The probe loop fixture only switches a module attribute, the same for every example.
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(hash_sets())
def test_property_exact_for_any_radius(case: tuple[np.ndarray, np.ndarray, int]) -> None:
    entries, queries, radius = case
    index = PDQIndex.build(entries)
    expected = pairs_within(distance_matrix(queries, entries), radius)
    for strategy in STRATEGIES:
        assert_same_pairs(index.search(queries, radius, strategy=strategy), expected)


@pytest.mark.parametrize("mmap", [True, False])
def test_save_load_round_trip(tmp_path: Path, mmap: bool) -> None:
    _, queries, _, distances, index = planted_case(1000)
    path = tmp_path / "list.pdqidx"
    index.save(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["list.pdqidx"]  # no temp file left
    loaded = PDQIndex.load(path, mmap=mmap)
    assert len(loaded) == len(index)
    assert loaded.substring_widths == index.substring_widths
    assert loaded.nbytes == index.nbytes
    for radius in (0, 31, 48):
        assert_same_pairs(loaded.search(queries, radius), pairs_within(distances, radius))
    index.save(path)  # overwriting an existing index is atomic too
    assert len(PDQIndex.load(path)) == len(index)


def test_save_load_empty(tmp_path: Path) -> None:
    path = tmp_path / "empty.pdqidx"
    PDQIndex.build(np.zeros((0, 32), dtype=np.uint8)).save(path)
    loaded = PDQIndex.load(path)
    assert len(loaded) == 0
    assert len(loaded.search(np.zeros((3, 32), dtype=np.uint8), 31)[0]) == 0


def test_load_rejects_damaged_files(tmp_path: Path) -> None:
    _, _, _, _, index = planted_case(5)
    path = tmp_path / "list.pdqidx"
    index.save(path)
    data = path.read_bytes()
    (tmp_path / "magic").write_bytes(b"X" + data[1:])
    (tmp_path / "short").write_bytes(data[: len(data) // 2])
    for name in ("magic", "short"):
        with pytest.raises(ValueError) as excinfo:
            PDQIndex.load(tmp_path / name)
        assert str(excinfo.value).isascii()


def test_rejects_bad_inputs() -> None:
    index = PDQIndex.build(np.zeros((3, 32), dtype=np.uint8))
    with pytest.raises(ValueError):
        PDQIndex.build(np.zeros((3, 31), dtype=np.uint8))
    with pytest.raises(ValueError):
        PDQIndex.build(np.zeros((3, 32), dtype=np.int64))
    with pytest.raises(ValueError):
        index.search(np.zeros(32, dtype=np.uint8), 31)
    with pytest.raises(ValueError):
        index.search(np.zeros((1, 32), dtype=np.uint8), -1)
    with pytest.raises(TypeError):
        index.search(np.zeros((1, 32), dtype=np.uint8), 3.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        index.search(np.zeros((1, 32), dtype=np.uint8), 3, strategy="fast")  # type: ignore[arg-type]
    assert len(index.search(np.zeros((0, 32), dtype=np.uint8), 31)[0]) == 0


def test_repr_shows_counts_only() -> None:
    entries, _, _, _, index = planted_case(5)
    text = repr(index)
    assert "entries=5" in text
    assert all(bytes(row).hex() not in text for row in entries)


def test_substring_values_follow_packbits_bit_order() -> None:
    rng = np.random.default_rng(11)
    hashes = rng.integers(0, 256, size=(50, 32), dtype=np.uint8)
    bits = np.unpackbits(hashes, axis=1).astype(np.uint64)
    for start, width in [(0, 8), (3, 23), (233, 23), (100, 24), (250, 6)]:
        weights = np.uint64(1) << np.arange(width - 1, -1, -1, dtype=np.uint64)
        expected = (bits[:, start : start + width] * weights).sum(axis=1)
        got = pdq_index._substring_values(hashes, start, width)
        np.testing.assert_array_equal(got.astype(np.uint64), expected)


def test_lookup_popcount_matches_bitwise_count() -> None:
    rng = np.random.default_rng(5)
    words = rng.integers(0, 2**63, size=(200, 2), dtype=np.uint64) * np.uint64(3)
    words[0] = np.uint64(2**64 - 1)  # 128 set bits: the widest half distance
    bits = np.unpackbits(words.view(np.uint8), axis=1).sum(axis=1)
    np.testing.assert_array_equal(pdq_index._half_distances(words), bits)
    counts = pdq_index._bit_counts_lut(words)
    np.testing.assert_array_equal(counts.sum(axis=1), bits)


def _read_hex(path: Path) -> np.ndarray:
    lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    return np.array([list(bytes.fromhex(line)) for line in lines], dtype=np.uint8).reshape(-1, 32)


def test_pdq_reference_needles_in_haystack() -> None:
    """Meta's multi-index-hashing regression data: needles vs haystack within distance 32."""
    needles_path, haystack_path = REG_TEST_INPUT / "needles.txt", REG_TEST_INPUT / "haystack.txt"
    if not (needles_path.is_file() and haystack_path.is_file()):
        pytest.skip(f"PDQ reference data not found under {REG_TEST_INPUT}")
    needles, haystack = _read_hex(needles_path), _read_hex(haystack_path)
    expected = pairs_within(distance_matrix(needles, haystack), 32)
    assert len(expected[0]) > 0, "the reference data is meant to contain matches"
    index = PDQIndex.build(haystack)
    for strategy in STRATEGIES:
        assert_same_pairs(index.search(needles, 32, strategy=strategy), expected)


def test_damaged_tables_are_an_error_not_a_stray_read(tmp_path: Path) -> None:
    """A saved index whose table points outside it: ValueError on search (either loop)."""
    _, queries, _, _, index = planted_case(1000)
    path = tmp_path / "list.pdqidx"
    index.save(path)
    loaded = PDQIndex.load(path, mmap=False)
    for offsets in loaded._offsets:
        offsets[1:-1] = np.iinfo(np.int32).max  # every bucket now ends far past the ids
    with pytest.raises(ValueError, match="corrupt PDQ index"):
        loaded.search(queries, 31, strategy="mih")


def test_more_hits_than_the_first_answer_has_room_for() -> None:
    """Thousands of copies of one hash, all within reach: every pair still comes back."""
    rng = np.random.default_rng(11)
    base = rng.integers(0, 256, size=(1, 32), dtype=np.uint8)
    entries = flip_bits(rng, np.repeat(base, 3000, axis=0), rng.integers(0, 6, size=3000))
    index = PDQIndex.build(entries)
    queries = flip_bits(rng, np.repeat(base, 3, axis=0), np.array([0, 2, 4]))
    assert_same_pairs(
        index.search(queries, 31, strategy="mih"),
        pairs_within(distance_matrix(queries, entries), 31),
    )
