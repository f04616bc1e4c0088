"""A user's whole job in every format: hidden copies found, distractors kept, clean copy exact."""

from __future__ import annotations

import csv
import hashlib
import json
import tarfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from safeset.examples import ExampleSet

from .support import FORMATS, all_rows, run_cli, write_dataset


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@pytest.fixture(scope="module", params=FORMATS)
def scanned(request, examples: ExampleSet, known_list: Path, tmp_path_factory):
    fmt = request.param
    root = tmp_path_factory.mktemp(fmt)
    source = write_dataset(examples, fmt, root)
    workers = "2" if fmt == "webdataset" else "1"
    scan = run_cli(
        "scan",
        str(source),
        "--list",
        str(known_list),
        "--out",
        str(root / "scan"),
        "--dihedral",
        "--workers",
        workers,
        "--quiet",
    )
    assert scan.returncode == 0, scan.stderr
    clean = run_cli(
        "clean", str(source), "--scan", str(root / "scan"), "--out", str(root / "clean"), "--quiet"
    )
    assert clean.returncode == 0, clean.stderr
    return fmt, source, root / "scan", root / "clean"


def test_every_hidden_copy_is_removed_and_no_distractor(scanned, examples: ExampleSet) -> None:
    _, _, scan, _ = scanned
    rows = all_rows(scan)
    hidden = {_md5(r.data): r.hidden for r in examples.records if r.hidden}
    assert len(rows) == len(examples.records)
    removed = {r["md5"] for r in rows if r["action"] == "remove"}
    assert removed == set(hidden), sorted(hidden[m] for m in set(hidden) - removed)
    assert all(r["action"] == "keep" and not r["error"] for r in rows if r["md5"] not in hidden)


def test_rotated_and_flipped_copies_match_through_their_variant(scanned) -> None:
    _, _, scan, _ = scanned
    variants = {m["variant"] for r in all_rows(scan) for m in r["matches"]}
    assert variants - {0}, "dihedral copies should match a non-identity variant"


def test_manifest_lists_flagged_samples_only_with_reasons(scanned, examples: ExampleSet) -> None:
    fmt, _, scan, _ = scanned
    with open(scan / "manifest.csv", newline="") as f:
        manifest = list(csv.DictReader(f))
    hidden = {_md5(r.data) for r in examples.records if r.hidden}
    assert {row["md5"] for row in manifest} == hidden
    for row in manifest:
        assert row["action"] == "remove"
        assert row["matched_list"] == "known"
        assert row["reasons"].startswith("hash:known:")
        assert int(row["distance"]) <= 31
        assert len(row["pdq"]) == 64
    if fmt in ("webdataset", "parquet"):
        assert all(row["url"].startswith("https://example.org/") for row in manifest)
    summary = json.loads((scan / "summary.json").read_text())
    assert summary["samples"] == len(examples.records)
    assert summary["actions"] == {
        "remove": len(hidden),
        "review": 0,
        "keep": len(examples.records) - len(hidden),
    }
    assert summary["matches"]["known"]["md5"] == 5  # the byte-exact copies
    assert summary["matches"]["known"]["pdq"] == len(hidden)


def test_clean_copy_holds_exactly_the_kept_samples_byte_identical_in_order(scanned) -> None:
    fmt, source, scan, clean = scanned
    kept = [r for r in all_rows(scan) if r["action"] == "keep"]
    kept.sort(key=lambda r: (r["source"], r["index"]))
    if fmt == "folder":
        written = sorted(p.relative_to(clean).as_posix() for p in clean.rglob("*") if p.is_file())
        expected = sorted(
            [r["location"] for r in kept] + [r["location"].rsplit(".", 1)[0] + ".txt" for r in kept]
        )
        assert written == expected
        for rel in written:
            assert (clean / rel).read_bytes() == (source / rel).read_bytes()
    elif fmt == "webdataset":
        for tar_path in sorted(source.glob("*.tar")):
            keep_keys = [r["key"] for r in kept if r["source"] == str(tar_path)]
            with tarfile.open(tar_path) as src:
                expected = [
                    (m.name, src.extractfile(m).read())
                    for m in src.getmembers()
                    if m.name.split(".")[0] in keep_keys
                ]
            with tarfile.open(clean / tar_path.name) as out:
                got = [(m.name, out.extractfile(m).read()) for m in out.getmembers()]
            assert got == expected
    else:
        original = pq.read_table(source)
        cleaned = pq.read_table(clean / source.name)
        assert cleaned.schema == original.schema
        assert cleaned.equals(original.take([r["index"] for r in kept]))


def test_source_is_untouched(scanned, examples: ExampleSet) -> None:
    fmt, source, _, _ = scanned
    files = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
    image_md5s = {_md5(r.data) for r in examples.records}
    if fmt == "folder":
        assert {_md5(p.read_bytes()) for p in files if p.suffix != ".txt"} == image_md5s
    assert not any(p.name.startswith(".") for p in files)


def test_without_dihedral_upright_copies_are_still_found(
    examples: ExampleSet, known_list: Path, tmp_path: Path
) -> None:
    source = write_dataset(examples, "webdataset", tmp_path)
    result = run_cli(
        "scan", str(source), "--list", str(known_list), "--out", str(tmp_path / "scan"), "--quiet"
    )
    assert result.returncode == 0, result.stderr
    removed = {r["md5"] for r in all_rows(tmp_path / "scan") if r["action"] == "remove"}
    upright = {
        _md5(r.data)
        for r in examples.records
        if r.hidden
        and r.hidden.split("/")[1]
        in ("exact", "recompressed", "resized", "brightened", "blurred", "grayscale", "png")
    }
    assert upright <= removed
    distractors = {_md5(r.data) for r in examples.records if not r.hidden}
    assert not removed & distractors
