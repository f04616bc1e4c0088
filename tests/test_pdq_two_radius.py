"""The two-radius PDQ search the scan uses: exact to the threshold, a re-check band beyond it.

Checked against the independent brute force of test_pdq_index (a byte lookup table, not the
index's popcounts): nothing within ``exact_radius`` may be missing, nothing beyond ``radius``
may appear, every returned distance is the true one, and the band is (nearly) all found.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from safeset.lists.hashlist import HashList
from safeset.matching.matcher import Matcher, SampleSignals
from safeset.matching.pdq_index import PDQIndex
from safeset.signals import HashValue

from .test_pdq_index import flip_bits, pairs_within, planted_case

# Every test here runs with the compiled loops and with numpy alone (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("compiled_loops")


def _pair_set(pairs: tuple[np.ndarray, ...]) -> set[tuple[int, int, int]]:
    return set(zip(*(column.tolist() for column in pairs), strict=True))


@pytest.mark.parametrize("n", [1000, 50_000])
@pytest.mark.parametrize(("exact", "radius"), [(31, 39), (15, 31), (0, 8), (31, 31)])
def test_exact_inside_band_bounded_outside(n: int, exact: int, radius: int) -> None:
    _, queries, _, distances, index = planted_case(n)
    for strategy in ("auto", "mih", "brute"):
        got = index.search(queries, radius, strategy=strategy, exact_radius=exact)
        within_exact = _pair_set(pairs_within(distances, exact))
        within_radius = _pair_set(pairs_within(distances, radius))
        found = _pair_set(got)
        assert within_exact <= found <= within_radius
        # Sorted as search() documents: by (query row, distance, entry id).
        order = np.lexsort((got[1], got[2], got[0]))
        np.testing.assert_array_equal(order, np.arange(len(order)))


def test_exact_radius_at_or_above_radius_is_a_plain_search() -> None:
    _, queries, _, distances, index = planted_case(50_000)
    for exact in (31, 40, 300):
        got = index.search(queries, 31, strategy="mih", exact_radius=exact)
        assert _pair_set(got) == _pair_set(pairs_within(distances, 31))


def test_band_is_nearly_all_found() -> None:
    """Entries 32..39 bits away are met by probes planned for 31 (almost always)."""
    rng = np.random.default_rng(7)
    entries = rng.integers(0, 256, size=(200_000, 32), dtype=np.uint8)
    index = PDQIndex.build(entries)
    sources = rng.integers(0, len(entries), size=400)
    flips = rng.integers(32, 40, size=400)
    queries = flip_bits(rng, entries[sources], flips)
    rows, ids, dists = index.search(queries, 39, strategy="mih", exact_radius=31)
    found = set(zip(rows.tolist(), ids.tolist(), strict=True))
    hits = [(q, int(s)) in found for q, s in enumerate(sources)]
    assert np.mean(hits) >= 0.97
    truth = np.unpackbits(queries[rows] ^ entries[ids], axis=1).sum(axis=1)
    np.testing.assert_array_equal(truth, dists)
    assert dists.max() <= 39


def test_bad_exact_radius_is_refused() -> None:
    index = PDQIndex.build(np.zeros((3, 32), dtype=np.uint8))
    with pytest.raises(ValueError, match="radius"):
        index.search(np.zeros((1, 32), dtype=np.uint8), 31, exact_radius=-1)


def test_matcher_near_band_found_with_two_radius_search() -> None:
    """A sample 35 bits from an entry is reported as near (re-check), not as a match."""
    rng = np.random.default_rng(11)
    entries = rng.integers(0, 256, size=(5000, 32), dtype=np.uint8)
    listed = HashList(
        name="l",
        path=Path("l.txt"),
        values={"pdq": entries},
        lines={"pdq": np.arange(1, len(entries) + 1)},
    )
    matcher = Matcher([listed], {"pdq": 31})
    near_query = flip_bits(rng, entries[10:11], np.array([35]))[0]
    hit_query = flip_bits(rng, entries[20:21], np.array([30]))[0]
    batch = [SampleSignals(), SampleSignals()]
    batch[0].add("pdq", [HashValue(bytes(near_query), 100)], "a.jpg")
    batch[1].add("pdq", [HashValue(bytes(hit_query), 100)], "b.jpg")
    matches, near = matcher.match_with_near(batch, {"pdq": 8})
    assert matches[0] == [] and 0 in near
    assert [m.distance for m in matches[1]] == [30] and 1 not in near


def test_probes_are_planned_for_the_exact_radius(monkeypatch: pytest.MonkeyPatch) -> None:
    from safeset.matching import pdq_index

    planned: list[int] = []
    original = pdq_index._plan_units

    def spy(widths, n, radius):  # type: ignore[no-untyped-def]
        planned.append(radius)
        return original(widths, n, radius)

    monkeypatch.setattr(pdq_index, "_plan_units", spy)
    _, queries, _, _, index = planted_case(1000)
    index.search(queries, 39, strategy="mih", exact_radius=31)
    index.search(queries, 20, strategy="mih", exact_radius=31)
    assert planned == [31, 20]
