"""The command line as a user meets it: one clear line and exit 2 for every mistake."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from PIL import Image

from safeset.examples import ExampleSet, write_webdataset

from .support import CONFORMANCE, run_cli


@pytest.fixture(scope="module")
def shards(examples: ExampleSet, tmp_path_factory) -> Path:
    return write_webdataset(examples, tmp_path_factory.mktemp("cli") / "shards")


def _assert_one_line_error(result, *fragments: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("safeset: error: ")
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_missing_source(tmp_path: Path, known_list: Path) -> None:
    result = run_cli(
        "scan", str(tmp_path / "nope"), "--list", str(known_list), "--out", str(tmp_path / "o")
    )
    _assert_one_line_error(result, "source not found", "nope")


def test_unknown_source_format(tmp_path: Path, known_list: Path) -> None:
    odd = tmp_path / "data.zip"
    odd.write_bytes(b"PK")
    result = run_cli("scan", str(odd), "--list", str(known_list), "--out", str(tmp_path / "o"))
    _assert_one_line_error(result, "unknown source format", "data.zip")


def test_malformed_list_line(tmp_path: Path, shards: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text(f"pdq {'a' * 64}\npdq {'a' * 63}\n")
    result = run_cli("scan", str(shards), "--list", str(bad), "--out", str(tmp_path / "o"))
    _assert_one_line_error(result, "bad.txt:2:", "64 hex digits")
    assert "a" * 63 not in result.stderr


def test_empty_list(tmp_path: Path, shards: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    result = run_cli("scan", str(shards), "--list", str(empty), "--out", str(tmp_path / "o"))
    _assert_one_line_error(result, "empty.txt has no usable hashes")


@pytest.mark.parametrize("threshold", ["-1", "300"])
def test_bad_threshold(tmp_path: Path, shards: Path, known_list: Path, threshold: str) -> None:
    result = run_cli(
        "scan",
        str(shards),
        "--list",
        str(known_list),
        "--out",
        str(tmp_path / "o"),
        "--pdq-threshold",
        threshold,
    )
    _assert_one_line_error(result, f"--pdq-threshold {threshold}")


def test_outputs_inside_the_source_are_refused(
    tmp_path: Path, shards: Path, known_list: Path
) -> None:
    result = run_cli("scan", str(shards), "--list", str(known_list), "--out", str(shards / "o"))
    _assert_one_line_error(result, "inside the source")
    assert not (shards / "o").exists()
    scan = tmp_path / "scan"
    assert (
        run_cli("scan", str(shards), "--list", str(known_list), "--out", str(scan), "-q").returncode
        == 0
    )
    result = run_cli("clean", str(shards), "--scan", str(scan), "--out", str(shards / "clean"))
    _assert_one_line_error(result, "inside the source")


def test_clean_with_other_sources_than_scanned_is_refused(
    tmp_path: Path, shards: Path, known_list: Path
) -> None:
    scan = tmp_path / "scan"
    assert (
        run_cli(
            "scan", str(shards / "00000.tar"), "--list", str(known_list), "--out", str(scan), "-q"
        ).returncode
        == 0
    )
    result = run_cli("clean", str(shards), "--scan", str(scan), "--out", str(tmp_path / "c"))
    _assert_one_line_error(result, "differ from those scanned")


def test_hash_prints_pdq_quality_md5_path(tmp_path: Path) -> None:
    img = tmp_path / "flat.png"
    Image.new("RGB", (80, 80), (10, 10, 10)).save(img)
    noise = tmp_path / "noise.jpg"
    noise.write_bytes(b"not an image")
    photo = (CONFORMANCE / "bridge-mods" / "aaa-orig.jpg") if CONFORMANCE.is_dir() else img
    result = run_cli("hash", str(photo), str(img), str(noise))
    assert result.returncode == 1
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert [r[3] for r in rows] == [str(photo), str(img)]
    for pdq_hex, quality, md5, _ in rows:
        assert len(pdq_hex) == 64 and len(md5) == 32 and 0 <= int(quality) <= 100
    assert rows[1][1] == "0"  # a flat image has no structure: quality 0
    assert "noise.jpg: not a recognised image format" in result.stderr
    assert "Traceback" not in result.stderr


def test_demo_runs_and_finds_every_hidden_copy(tmp_path: Path) -> None:
    result = run_cli("demo", "--dir", str(tmp_path / "demo"), "--quiet")
    assert result.returncode == 0, result.stderr
    assert "hidden copies found: 65/65; distractors wrongly flagged: 0" in result.stdout


def test_demo_never_removes_what_it_did_not_create(tmp_path: Path) -> None:
    mine = tmp_path / "work"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    refused = run_cli("demo", "--dir", str(mine), "--quiet")
    assert refused.returncode == 2, refused.stdout
    assert "not made by safeset demo" in refused.stderr and "Traceback" not in refused.stderr
    assert [p.name for p in mine.iterdir()] == ["thesis.tex"]

    demo = tmp_path / "demo"
    assert run_cli("demo", "--dir", str(demo), "--quiet").returncode == 0
    (demo / "notes.txt").write_text("mine, written beside the demo's files")
    again = run_cli("demo", "--dir", str(demo), "--quiet")
    assert again.returncode == 0, again.stderr
    assert (demo / "notes.txt").read_text() == "mine, written beside the demo's files"
    assert "hidden copies found: 65/65" in again.stdout


def test_recall_options_reach_the_job(tmp_path: Path, known_list: Path, examples: ExampleSet):
    data = write_webdataset(examples, tmp_path / "shards")
    args = ["scan", data, "--list", known_list, "-q", "--workers", "1"]
    assert run_cli(*args, "--out", tmp_path / "on").returncode == 0
    off = run_cli(*args, "--out", tmp_path / "off", "--no-expand", "--no-unpad", "--no-recorded")
    assert off.returncode == 0, off.stderr
    on_job = json.loads((tmp_path / "on" / "job.json").read_text())["options"]
    off_job = json.loads((tmp_path / "off" / "job.json").read_text())["options"]
    assert (on_job["unpad"], "near" in on_job["signals"], bool(on_job["recorded"])) == (
        True,
        True,
        True,
    )
    assert (off_job["unpad"], "near" in off_job["signals"], off_job["recorded"]) == (
        False,
        False,
        {},
    )
