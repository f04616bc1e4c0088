"""Our PDQ against Meta's reference values and the reference matching regression data."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from safeset.matching.pdq_index import PDQIndex
from safeset.signals.image import image_facts
from safeset.signals.pdq_reference import hamming_distance

from .support import CONFORMANCE

# Every test here runs with the compiled loops and with numpy alone (tests/conftest.py).
pytestmark = [
    pytest.mark.skipif(not CONFORMANCE.is_dir(), reason="../shared/conformance absent"),
    pytest.mark.usefixtures("compiled_loops"),
]

# The reference projects accept this much drift between JPEG decoders.
DECODER_TOLERANCE = 16


def _expected() -> list[tuple[str, str]]:
    if not CONFORMANCE.is_dir():
        return []
    with open(CONFORMANCE / "EXPECTED.tsv", newline="") as f:
        return [(r["path"], r["pdq_hex"]) for r in csv.DictReader(f, delimiter="\t")]


@pytest.mark.parametrize(("path", "expected_hex"), _expected())
def test_exact_pdq_matches_reference(path: str, expected_hex: str) -> None:
    # --exact-pdq is the reference path; the default fast path is held to the same bound on
    # every hash good enough to match on (tests/test_pdq_fast.py).
    facts = image_facts((CONFORMANCE / path).read_bytes(), exact_pdq=True)
    assert hamming_distance(facts.pdq.hash, bytes.fromhex(expected_hex)) <= DECODER_TOLERANCE


def test_bridge_modifications_match_the_original() -> None:
    mods = CONFORMANCE / "bridge-mods"
    original = image_facts((mods / "aaa-orig.jpg").read_bytes()).pdq.hash
    for path in sorted(mods.glob("*.jpg")):
        assert hamming_distance(image_facts(path.read_bytes()).pdq.hash, original) <= 31, path.name


def _hashes(path: Path) -> np.ndarray:
    lines = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
    return np.frombuffer(bytes.fromhex("".join(lines)), dtype=np.uint8).reshape(-1, 32)


def test_needles_in_haystack_equal_brute_force() -> None:
    needles = _hashes(CONFORMANCE / "reg-test-input" / "needles.txt")
    haystack = _hashes(CONFORMANCE / "reg-test-input" / "haystack.txt")
    xor = np.bitwise_xor(needles[:, None, :], haystack[None, :, :])
    brute = np.unpackbits(xor, axis=2).sum(axis=2)
    expected = {(int(q), int(e)) for q, e in zip(*np.nonzero(brute <= 32), strict=True)}
    rows, ids, dist = PDQIndex.build(haystack).search(needles, 32)
    assert set(zip(rows.tolist(), ids.tolist(), strict=True)) == expected
    assert expected  # the regression data does contain matches
    assert all(brute[q, e] == d for q, e, d in zip(rows, ids, dist, strict=True))
