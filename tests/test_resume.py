"""Invariant 6 for real: ``kill -9`` a scan midway, rerun it, get what one clean run gives."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from safeset.api import scan
from safeset.errors import SafesetError
from safeset.examples import ExampleSet, build_examples, write_known_list, write_webdataset
from safeset.store import ScanDir

from .support import assert_same_scan

SHARDS = 43


def scan_command(data: Path, known: Path, out: Path) -> list[str]:
    return [
        sys.executable, "-m", "safeset", "scan", str(data),
        "--list", str(known), "--out", str(out), "--workers", "2", "--quiet",
    ]  # fmt: skip


def kill_when_some_shards_are_done(command: list[str], results: Path, some: int) -> int:
    """Start the scan, SIGKILL its whole process group once ``some`` shards are written."""
    process = subprocess.Popen(
        command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    try:
        while len(list(results.glob("*.parquet"))) < some:
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline, "the scan made no progress"
            time.sleep(0.005)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        process.stderr.close()
    return process.returncode


def test_kill_9_midway_then_rerun_gives_the_uninterrupted_result(tmp_path: Path) -> None:
    examples = build_examples(distractors=SHARDS * 5 - 65, dihedral=True, seed=3)
    data = write_webdataset(examples, tmp_path / "data", per_shard=5)
    assert len(list(data.glob("*.tar"))) == SHARDS
    known = tmp_path / "known.txt"
    write_known_list(examples, known)
    out = tmp_path / "scan"

    returncode = kill_when_some_shards_are_done(
        scan_command(data, known, out), out / "results", some=3
    )
    assert returncode == -signal.SIGKILL
    finished = ScanDir(out).shard_ids()
    assert 3 <= len(finished) < SHARDS, "killed too late to test anything"
    assert not (out / "summary.json").exists()

    rerun = subprocess.run(scan_command(data, known, out), capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    reference = subprocess.run(
        scan_command(data, known, tmp_path / "reference"), capture_output=True, text=True
    )
    assert reference.returncode == 0, reference.stderr

    assert_same_scan(tmp_path / "reference", out)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["run"]["shards_resumed"] == len(finished)
    assert summary["samples"] == len(examples.records)
    assert summary["actions"]["remove"] > 0
    leftovers = [p.name for p in out.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []


def test_a_scan_killed_while_preparing_its_folder_is_resumable(
    examples: ExampleSet, known_list: Path, tmp_path: Path
) -> None:
    """A kill between creating results/ and renaming job.json into place leaves exactly this;
    the rerun used to refuse the folder as "not empty and holds no safeset scan"."""
    data = write_webdataset(examples, tmp_path / "data", per_shard=50)
    out = tmp_path / "scan"
    (out / "results").mkdir(parents=True)
    (out / ".safeset-k2j4x9.tmp").write_text('{"sources": [')  # job.json, half-written

    summary = scan([data], [known_list], out, progress=False)
    assert summary["samples"] == len(examples.records)
    assert sorted(p.name for p in out.iterdir()) == [
        ".safeset-lock", "job.json", "manifest.csv", "manifest.csv-metadata.json", "report.html",
        "results", "summary.json",
    ]  # fmt: skip


def test_a_folder_with_anything_else_in_it_is_still_refused(
    examples: ExampleSet, known_list: Path, tmp_path: Path
) -> None:
    data = write_webdataset(examples, tmp_path / "data", per_shard=50)
    out = tmp_path / "scan"
    (out / "results").mkdir(parents=True)
    (out / "results" / "notes.txt").write_text("mine")

    with pytest.raises(SafesetError, match="is not empty and holds no safeset scan"):
        scan([data], [known_list], out, progress=False)
