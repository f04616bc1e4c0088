"""What the tests share: where the shared data lies, how a user runs safeset, how a scan's
results are read and compared, and the stand-in datasets in every format safeset reads.

Benign content only: "known" items are scikit-image's bundled photos (see safeset.examples).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from safeset.examples import ExampleSet, write_folder, write_parquet, write_webdataset
from safeset.store import ScanDir

# ../shared beside the checkout (absent in some environments: tests using it skip).
SHARED = Path(__file__).resolve().parents[2] / "shared"
CONFORMANCE = SHARED / "conformance" / "pdq"


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m safeset`` as a user would, capturing both streams."""
    return subprocess.run(
        [sys.executable, "-m", "safeset", *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


def scan_cli(out: Path, source: Path, known_list: Path, *extra: str) -> list[dict[str, Any]]:
    """``safeset scan SOURCE --list LIST --out OUT`` on one worker; its result rows."""
    result = run_cli(
        "scan", source, "--list", known_list, "--out", out, "-q", "--workers", "1", *extra
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return all_rows(out)


def all_rows(scan: Path) -> list[dict[str, Any]]:
    """Every result row, shard by shard in shard-id order."""
    return [row for table in ScanDir(scan).iter_tables() for row in table.to_pylist()]


def assert_same_scan(a: Path, b: Path) -> None:
    """Same job, shard files, rows and manifest; the summaries differ only in ``run``."""
    assert (a / "job.json").read_bytes() == (b / "job.json").read_bytes()
    assert ScanDir(a).shard_ids() == ScanDir(b).shard_ids()
    assert all_rows(a) == all_rows(b)
    assert (a / "manifest.csv").read_bytes() == (b / "manifest.csv").read_bytes()
    summary_a = json.loads((a / "summary.json").read_text())
    summary_b = json.loads((b / "summary.json").read_text())
    assert {**summary_a, "run": None} == {**summary_b, "run": None}


# The stand-in dataset in each format safeset reads (URL tables need a server: test_url_source).
FORMATS = ("folder", "webdataset", "parquet", "parquet-hf")


def write_hf_parquet(examples: ExampleSet, path: Path) -> Path:
    """Hugging Face ``datasets`` layout: an ``image`` struct {bytes, path}, no key column."""
    image = pa.array(
        [{"bytes": r.data, "path": f"{r.key}.{r.ext}"} for r in examples.records],
        pa.struct([("bytes", pa.binary()), ("path", pa.string())]),
    )
    table = pa.table({"image": image, "text": [r.caption for r in examples.records]})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, row_group_size=20)
    return path


def write_dataset(examples: ExampleSet, fmt: str, root: Path) -> Path:
    """The dataset in ``fmt`` under ``root``; returns the SOURCE argument to scan."""
    if fmt == "folder":
        return write_folder(examples, root / "images")
    if fmt == "webdataset":
        return write_webdataset(examples, root / "shards")
    if fmt == "parquet":
        return write_parquet(examples, root / "pq" / "data.parquet")
    if fmt == "parquet-hf":
        return write_hf_parquet(examples, root / "hf" / "train.parquet")
    raise ValueError(fmt)
