"""The scan folder's reports, rebuilt column-wise from the result files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow as pa

from safeset.policy import EXPLICIT_MINOR_REASON
from safeset.provenance.rules import SYNTHETIC_EXPLICIT_MINOR_REASON
from safeset.store import DECISION_FIELDS, IDENTITY_FIELDS, ScanDir

SCHEMA = pa.schema(
    [
        *IDENTITY_FIELDS,
        pa.field("md5", pa.string()),
        pa.field("pdq", pa.string()),
        pa.field("error", pa.string()),
        pa.field("synthetic_evidence", pa.list_(pa.string())),
        *DECISION_FIELDS,
    ]
)


def _match(name: str, kind: str, distance: int) -> dict:
    return {"list": name, "entry": 3, "signal_type": kind, "distance": distance, "variant": 0,
            "part": None}  # fmt: skip


def _row(key: str, action: str = "keep", **fields) -> dict:
    row = {"key": key, "source": "src", "location": f"{key}.jpg", "index": 0, "shard": "s",
           "url": None, "md5": "m" + key, "pdq": None, "error": None, "synthetic_evidence": None,
           "matches": [], "action": action, "reasons": []}  # fmt: skip
    return row | fields


def _write(scan: ScanDir, shard: str, rows: list[dict]) -> None:
    scan.results.mkdir(parents=True, exist_ok=True)
    scan.write_shard(shard, pa.Table.from_pylist(rows, schema=SCHEMA))


def test_summary_and_manifest_count_every_row_and_list_only_flagged_ones(tmp_path: Path):
    scan = ScanDir(tmp_path)
    _write(scan, "a", [
        _row("k1"),
        _row("k2", error="cannot read: gone"),
        _row("k3", "remove", matches=[_match("ncmec", "md5", 0), _match("iwf", "pdq", 7)],
             reasons=["hash:ncmec:md5"], pdq="ab"),
        _row("=k4", "review", reasons=["synthetic:c2pa"]),
    ])  # fmt: skip
    _write(scan, "b", [
        _row("k5", "remove", reasons=[EXPLICIT_MINOR_REASON, SYNTHETIC_EXPLICIT_MINOR_REASON]),
        _row("k6", error="truncated or corrupt image data: x"),
        _row("k7", error="truncated or corrupt image data: y", reasons=["opt-out:tdm"]),
        _row("k8", "review", matches=[_match("iwf", "pdq", 30)]),
    ])  # fmt: skip
    _write(scan, "c", [])

    summary = scan.write_reports({"extra": 1})

    assert summary["samples"] == 8
    assert summary["actions"] == {"keep": 4, "review": 2, "remove": 2}
    assert summary["errors"] == 3
    assert summary["errors_by_kind"] == {"cannot read": 1, "truncated or corrupt image data": 2}
    assert summary["matches"] == {"iwf": {"pdq": 2}, "ncmec": {"md5": 1}}
    assert summary["provenance"] == {"face-swap+explicit": 0, "face-swap-suspected": 0,
                                     "opt-out": 1, "synthetic": 1}  # fmt: skip
    assert summary["warning"].startswith("1 samples combine explicit content")
    assert "1 of them are synthetic" in summary["warning"]
    assert summary["extra"] == 1
    assert json.loads(scan.summary.read_text()) == summary
    with scan.manifest.open(newline="") as f:
        manifest = list(csv.DictReader(f))
    assert [(r["key"], r["action"], r["matched_list"], r["distance"]) for r in manifest] == [
        ("k3", "remove", "ncmec", "0"),
        ("'=k4", "review", "", ""),  # a formula-like key is made inert
        ("k5", "remove", "", ""),
        ("k8", "review", "iwf", "30"),
    ]
    assert manifest[0]["pdq"] == "ab" and manifest[0]["md5"] == "mk3"
    assert manifest[0]["reasons"] == "hash:ncmec:md5"


def test_summary_without_provenance_has_no_provenance_counts(tmp_path: Path):
    scan = ScanDir(tmp_path)
    rows = [_row("k1", reasons=["synthetic:c2pa"])]
    schema = SCHEMA.remove(SCHEMA.get_field_index("synthetic_evidence"))
    scan.results.mkdir(parents=True)
    for row in rows:
        del row["synthetic_evidence"]
    scan.write_shard("a", pa.Table.from_pylist(rows, schema=schema))
    summary = scan.write_reports({})
    assert "provenance" not in summary
    assert summary["actions"] == {"keep": 1, "review": 0, "remove": 0}
