"""Indexes and the matcher: exact semantics, best match per list, weak PDQ hashes ignored."""

from __future__ import annotations

import shutil
import sysconfig
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from safeset.errors import SafesetError
from safeset.lists import HashList, ListSpec, load_list
from safeset.matching import pdq_index
from safeset.matching.exact_index import ExactIndex
from safeset.matching.matcher import Matcher, SampleSignals
from safeset.matching.pdq_index import PDQIndex
from safeset.signals import HashValue

rng = np.random.default_rng(3)


def _signals(*, quality: int = 100, **values: list[bytes]) -> SampleSignals:
    """A sample's queries: for each type, its values as variants 0, 1, ... of one file."""
    signals = SampleSignals()
    for type_name, raw in values.items():
        signals.add(type_name, [HashValue(v, quality, n) for n, v in enumerate(raw)], "x")
    return signals


def _flip(h: np.ndarray, bits: int) -> np.ndarray:
    out = np.unpackbits(h.copy())
    out[rng.choice(256, bits, replace=False)] ^= 1
    return np.packbits(out)


def test_exact_index_finds_all_equal_rows_including_duplicates() -> None:
    values = rng.integers(0, 256, (100, 16), dtype=np.uint8)
    values[50] = values[7]
    idx = ExactIndex.build(values)
    queries = np.stack([values[7], rng.integers(0, 256, 16, dtype=np.uint8), values[99]])
    rows, ids, dist = idx.search(queries)
    assert sorted(zip(rows.tolist(), ids.tolist(), strict=True)) == [(0, 7), (0, 50), (2, 99)]
    assert not dist.any()


def test_pdq_index_radius_is_inclusive_and_exact() -> None:
    base = rng.integers(0, 256, (200, 32), dtype=np.uint8)
    idx = PDQIndex.build(base)
    queries = np.stack([_flip(base[3], 31), _flip(base[4], 32), _flip(base[5], 0)])
    rows, ids, dist = idx.search(queries, 31)
    assert list(zip(rows.tolist(), ids.tolist(), dist.tolist(), strict=True)) == [
        (0, 3, 31),
        (2, 5, 0),
    ]


def _list(tmp_path: Path, name: str, lines: list[str]) -> Path:
    path = tmp_path / f"{name}.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_matcher_reports_best_match_per_list_with_line_numbers(tmp_path: Path) -> None:
    target = rng.integers(0, 256, 32, dtype=np.uint8)
    near, nearer = _flip(target, 20), _flip(target, 5)
    md5 = rng.bytes(16)
    a = _list(tmp_path, "a", [f"pdq {near.tobytes().hex()}", f"pdq {nearer.tobytes().hex()}"])
    b = _list(tmp_path, "b", ["# header", f"md5 {md5.hex()}"])
    matcher = Matcher([load_list(ListSpec.parse(str(p))) for p in (a, b)], {"pdq": 31})
    hit = _signals(md5=[md5], pdq=[target.tobytes()])
    # quality < 50: recorded, not matched
    weak = _signals(pdq=[target.tobytes()], quality=49)
    miss = _signals(pdq=[_flip(target, 60).tobytes()])
    results = matcher.match([hit, weak, miss])
    assert [(m.list_name, m.signal_type, m.entry, m.distance) for m in results[0]] == [
        ("b", "md5", 2, 0),
        ("a", "pdq", 2, 5),
    ]
    assert results[1] == [] and results[2] == []


def test_matcher_records_which_dihedral_variant_matched(tmp_path: Path) -> None:
    target = rng.integers(0, 256, 32, dtype=np.uint8)
    path = _list(tmp_path, "l", [f"pdq {target.tobytes().hex()}"])
    matcher = Matcher([load_list(ListSpec.parse(str(path)))])
    variants = [rng.bytes(32) for _ in range(8)]
    variants[5] = _flip(target, 3).tobytes()
    (match,) = matcher.match([_signals(pdq=variants)])[0]
    assert (match.variant, match.distance) == (5, 3)


def test_near_misses_of_the_fast_hash_are_confirmed_on_the_full_decode(tmp_path: Path) -> None:
    import io

    from safeset.api import scan
    from safeset.examples import KNOWN, bundled_photo
    from safeset.pipeline import ScanOptions
    from safeset.signals.image import image_facts

    # Find a photo whose fast hash differs from the reference hash by a few bits.
    for name in KNOWN:
        buf = io.BytesIO()
        bundled_photo(name).save(buf, "JPEG", quality=85)
        data = buf.getvalue()
        fast, exact = image_facts(data).pdq.hash, image_facts(data, exact_pdq=True).pdq.hash
        xor = np.frombuffer(fast, np.uint8) ^ np.frombuffer(exact, np.uint8)
        diff = np.unpackbits(xor)
        if 1 <= diff.sum() <= 8:
            break
    else:
        pytest.skip("no bundled photo whose fast and exact hashes differ by 1-8 bits")
    # An entry 31 bits from the exact hash, every flipped bit one where fast == exact:
    # the fast hash is 31 + diff away, past the threshold, the exact one just inside.
    bits = np.unpackbits(np.frombuffer(exact, np.uint8))
    bits[rng.choice(np.flatnonzero(diff == 0), 31, replace=False)] ^= 1
    entry = np.packbits(bits).tobytes()
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "photo.jpg").write_bytes(data)
    listed = _list(tmp_path, "near", [f"pdq {entry.hex()}"])
    out = tmp_path / "scan"
    scan([tmp_path / "data"], [listed], out, options=ScanOptions(), progress=False)
    (row,) = pq.read_table(next((out / "results").glob("*.parquet"))).to_pylist()
    assert row["action"] == "remove"
    assert [(m["list"], m["distance"]) for m in row["matches"]] == [("near", 31)]
    assert row["pdq"] == exact.hex()


def test_the_compiled_loops_are_built_where_a_compiler_is() -> None:
    """setup.py builds them as optional: a machine with a C compiler must have them."""
    from safeset.signals import pdq_fast

    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        pytest.skip(f"no C compiler ({compiler}) here: numpy alone does their work")
    assert pdq_index._mih is not None, "safeset.matching._mih was not built"
    assert pdq_fast._compiled is not None, "safeset.signals._pdq was not built"


def test_a_damaged_index_is_one_error_naming_its_list() -> None:
    rng = np.random.default_rng(5)
    hashes = rng.integers(0, 256, size=(5000, 32), dtype=np.uint8)
    listed = HashList.from_hashes("iwf", {"pdq": [row.tobytes().hex() for row in hashes]})
    matcher = Matcher([listed])
    for offsets in listed.index("pdq")._offsets:
        offsets[1:-1] = np.iinfo(np.int32).max  # every bucket ends past the table
    with pytest.raises(SafesetError, match=r"^list iwf: corrupt PDQ index .*build it again$"):
        matcher.match([_signals(pdq=[hashes[0].tobytes()])])
