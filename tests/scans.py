"""Comparing two scan folders the way a resumed scan must match an uninterrupted one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safeset.store import ScanDir


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
