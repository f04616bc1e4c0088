"""The scan report's figures (Arrow aggregation), its page, ``safeset report`` and the terminal."""

from __future__ import annotations

import io
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from rich.console import Console

from safeset.api import scan as api_scan
from safeset.examples import ExampleSet, write_folder
from safeset.pipeline import ScanOptions
from safeset.progress import LineTracker, track
from safeset.report import scan_report, write_report
from safeset.report.aggregate import MAX_FLAGGED_ROWS
from safeset.signals.faces import FACE_TYPE

from .support import all_rows, run_cli


@pytest.fixture(scope="module")
def source(examples: ExampleSet, tmp_path_factory) -> Path:
    root = write_folder(examples, tmp_path_factory.mktemp("report") / "data")
    (root / "zz").mkdir()
    (root / "zz" / "empty.jpg").write_bytes(b"")
    (root / "zz" / "noise.jpg").write_bytes(b"\x00not an image" * 50)
    (root / "zz" / "truncated.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 20)
    return root


@pytest.fixture(scope="module")
def scan(source: Path, known_list: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report-scan") / "scan"
    api_scan(
        [str(source)], [str(known_list)], out, options=ScanOptions(dihedral=True), progress=False
    )
    return out


def test_the_scan_writes_its_report(scan: Path) -> None:
    page = (scan / "report.html").read_text()
    assert page.startswith("<!doctype html>")
    assert "Content-Security-Policy" in page


def test_figures_equal_summary_json(scan: Path) -> None:
    summary = json.loads((scan / "summary.json").read_text())
    r = scan_report(scan)
    assert r.samples == summary["samples"]
    assert r.actions == summary["actions"]
    assert r.errors == summary["errors"] > 0
    assert {e["kind"]: e["samples"] for e in r.errors_by_kind} == summary["errors_by_kind"]
    assert r.matches_by_list() == summary["matches"]
    assert r.shards == r.shards_total == summary["shards"]


def _rule(reason: str) -> str:
    """The report's grouping of reasons, written independently of its regexes."""
    parts = reason.split(":")
    if parts[0] == "hash":
        return ":".join(parts[:3])
    if parts[0] in ("explicit", "minor-face"):
        return parts[0]
    if parts[0] in ("caption-term", "error"):
        return ":".join(parts[:2])
    return reason


def test_figures_equal_a_per_row_tally(scan: Path) -> None:
    """Every table the page shows, recomputed row by row in Python from the results."""
    rows = all_rows(scan)
    r = scan_report(scan)

    reasons = Counter(rule for row in rows for rule in {_rule(x) for x in row["reasons"]})
    assert {x["reason"]: x["samples"] for x in r.reasons} == dict(reasons)

    def tally(column: str) -> dict[str, dict[str, int]]:
        out: dict[str, Counter[str]] = {}
        for row in rows:
            c = out.setdefault(row[column], Counter())
            c["samples"] += 1
            c[row["action"]] += 1
            c["errors"] += bool(row["error"])
            c["matched"] += bool(row["matches"])
        keys = ("samples", "remove", "review", "keep", "errors", "matched")
        return {k: {x: v[x] for x in keys} for k, v in out.items()}

    assert {x.pop("source"): x for x in r.sources} == tally("source")
    assert {x.pop("shard"): x for x in r.shard_rows} == tally("shard")

    distances: dict[tuple[str, str], Counter[int]] = {}
    for row in rows:
        for m in row["matches"]:
            distances.setdefault((m["list"], m["signal_type"]), Counter())[m["distance"]] += 1
    charted = {
        (d["list"], d["signal_type"]): {
            x: n for x, n in zip(d["distance"], d["matches"], strict=True) if n
        }
        for d in r.distances
    }
    assert charted == {k: dict(v) for k, v in distances.items() if k[1] == "pdq"}
    assert sum(distances[("known", "pdq")].values()) > 10

    flagged = [row["key"] for row in rows if row["action"] in ("remove", "review")]
    assert [f["key"] for f in r.flagged] == flagged[:MAX_FLAGGED_ROWS]
    errors = [row for row in rows if row["error"]]
    for e in r.errors_by_kind:
        kind_rows = [x for x in errors if x["error"].split(":", 1)[0] == e["kind"]]
        assert e["examples"] == [
            {"key": x["key"], "location": x["location"]} for x in kind_rows[:3]
        ]
    assert r.throughput["cumulative"][-1] == len(rows)


def test_the_page_holds_no_image_and_no_hash(scan: Path, known_list: Path) -> None:
    page = (scan / "report.html").read_text().lower()
    entries = [ln.split()[1].lower() for ln in known_list.read_text().splitlines() if ln[:1] != "#"]
    assert entries and not any(e in page for e in entries)
    # No sample's hash at all, flagged or not (the manifest holds the flagged ones').
    hashes = {row[c] for row in all_rows(scan) for c in ("md5", "sha1", "sha256", "pdq")}
    hashes.discard(None)
    assert len(hashes) > 100 and not any(h.lower() in page for h in hashes)
    assert "<img" not in page and "data:" not in page
    # Everything it shows is inline: no src or href to anything but the scan's own files.
    targets = set(re.findall(r'(?:src|href)="([^"#][^"]*)"', page))
    assert targets == {"manifest.csv", "summary.json", "job.json"}


# Reports of results files that lack columns (another schema, no screening) or hold more.


def _write_scan(root: Path, tables: list[pa.Table], job: dict[str, Any] | None = None) -> Path:
    (root / "results").mkdir(parents=True)
    (root / "job.json").write_text(json.dumps(job or {"sources": [], "lists": [], "options": {}}))
    for n, table in enumerate(tables):
        pq.write_table(table, root / "results" / f"s000-{n:05d}.parquet")
    return root


def test_missing_columns_only_hide_their_sections(tmp_path: Path) -> None:
    table = pa.table(
        {
            "key": ["a", "b", "c"],
            "source": ["x.tar"] * 3,
            "location": ["a.jpg", "b.jpg", "c.jpg"],
            "action": ["keep", "review", "keep"],
            "reasons": pa.array([[], ["error:empty file"], []], pa.list_(pa.string())),
            "error": [None, "empty file", None],
        }
    )
    scan = _write_scan(tmp_path / "scan", [table])
    r = scan_report(scan)
    assert r.samples == 3 and r.actions == {"remove": 0, "review": 1, "keep": 2}
    assert r.matches == [] and r.distances == []
    assert r.explicit is None and r.ages is None and r.provenance is None
    assert set(r.missing_columns) == {"matches", "explicit_score", "faces"}
    page = write_report(scan).read_text()
    assert "this scan did not screen content" in page
    assert "No provenance signals" in page
    assert "No sample matched a hash list" in page


def test_screening_histograms_and_provenance(tmp_path: Path) -> None:
    faces_type = pa.list_(FACE_TYPE)
    face = {"x": 0, "y": 0, "w": 9, "h": 9, "score": 0.9}
    table = pa.table(
        {
            "key": ["a", "b", "c", "d", "e"],
            "action": ["keep", "remove", "remove", "keep", "keep"],
            "explicit_score": pa.array([0.01, 0.61, 0.99, 0.6, None], pa.float32()),
            "faces": pa.array(
                [
                    [],
                    [face | {"age": 14.2}],
                    [face | {"age": 30.0}, face | {"age": 130.0}],
                    None,
                    [],
                ],
                faces_type,
            ),
            "provenance_c2pa": [True, False, True, None, True],
            "provenance_generator": ["sd-xl", None, "sd-xl", "dall-e", None],
            "provenance_watermark_score": pa.array([0.1, None, 0.9, None, None], pa.float32()),
        }
    )
    job = {
        "options": {"policy": {"screen": True, "thresholds": {"explicit": 0.6, "minor_age": 25}}}
    }
    scan = _write_scan(tmp_path / "scan", [table], job)
    (scan / "summary.json").write_text(json.dumps({"provenance": {"opt_out": {"noai": 2}}}))
    r = scan_report(scan)
    assert r.explicit is not None and r.ages is not None
    assert r.explicit["screened"] == 4 and r.explicit["at_or_above"] == 3
    bins = dict(zip(r.explicit["bins"], r.explicit["samples"], strict=True))
    assert bins[0.0] == 1 and bins[0.6] == 2 and bins[0.95] == 1
    assert sum(r.explicit["samples"]) == 4
    ages = {a: n for a, n in zip(r.ages["bins"], r.ages["faces"], strict=True) if n}
    assert ages == {14: 1, 30: 1, 100: 1} and r.ages["below"] == 1
    assert {(p["signal"], p["value"]): p["samples"] for p in r.provenance} == {
        ("c2pa", "yes"): 3,
        ("generator", "sd-xl"): 2,
        ("generator", "dall-e"): 1,
        ("watermark_score", "present"): 2,
        ("opt_out", "noai"): 2,
    }
    page = write_report(scan).read_text()
    assert '"id":"chart-explicit"' in page and '"id":"chart-ages"' in page


def test_results_files_with_different_columns_are_combined(tmp_path: Path) -> None:
    """Shards written before and after a schema change: columns present in some only."""
    old = pa.table({"key": ["a"], "action": ["keep"], "source": ["s"]})
    new = pa.table({"key": ["b"], "action": ["remove"], "source": ["s"], "provenance_c2pa": [True]})
    r = scan_report(_write_scan(tmp_path / "scan", [old, new]))
    assert r.samples == 2 and r.actions["remove"] == 1
    assert r.provenance == [{"signal": "c2pa", "value": "yes", "samples": 1}]
    assert [s["shard"] for s in r.shard_rows] == ["s000-00001", "s000-00000"]


def test_big_tables_are_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from safeset.report import aggregate as module

    monkeypatch.setattr(module, "MAX_SHARD_ROWS", 10)
    monkeypatch.setattr(module, "MAX_FLAGGED_ROWS", 4)
    n = 25
    tables = [pa.table({"key": [f"k{i}"], "action": [("review", "keep")[i % 2]]}) for i in range(n)]
    scan = _write_scan(tmp_path / "scan", tables)
    r = scan_report(scan)
    assert len(r.shard_rows) == 11 and r.shard_rows[-1] == {"shard": None, "more": n - 10}
    # The most flagged shards are the ones kept.
    assert all(s["review"] == 1 for s in r.shard_rows[:-1])
    assert [f["key"] for f in r.flagged] == ["k0", "k2", "k4", "k6"]
    page = write_report(scan).read_text()
    assert f"{n - 10:,} more not shown" in page


# The command line.


def test_cli_report_writes_where_asked(scan: Path, tmp_path: Path) -> None:
    out = tmp_path / "elsewhere" / "audit.html"
    result = run_cli("report", str(scan), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"report: {out}"
    page = out.read_text()
    href = re.search(r'href="([^"]*manifest\.csv)"', page)
    assert href and (out.parent / href.group(1)).resolve() == (scan / "manifest.csv").resolve()


def test_cli_report_of_a_folder_that_is_no_scan(tmp_path: Path) -> None:
    result = run_cli("report", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"safeset: error: {tmp_path} is not a safeset scan folder (no job.json)"
    ]


def test_scan_json_prints_the_summary_and_plain_progress(
    source: Path, known_list: Path, tmp_path: Path
) -> None:
    out = tmp_path / "scan"
    result = run_cli("scan", str(source), "--list", str(known_list), "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == json.loads((out / "summary.json").read_text())
    # Not a terminal: no bar, one plain line at the end (periodic ones every 10 s before it).
    lines = result.stderr.splitlines()
    assert lines and all(ln.startswith("scanning: ") for ln in lines), result.stderr
    shards, samples = json.loads(result.stdout)["shards"], json.loads(result.stdout)["samples"]
    assert re.fullmatch(
        rf"scanning: {shards}/{shards} shards, {samples:,} samples in \d:\d\d:\d\d "
        r"\([\d,]+/s\), done",
        lines[-1],
    ), lines[-1]
    assert "\x1b" not in result.stderr and "━" not in result.stderr

    quiet = run_cli(
        "scan", str(source), "--list", str(known_list), "--out", str(out), "--json", "--quiet"
    )
    assert quiet.returncode == 0 and quiet.stderr == ""
    assert json.loads(quiet.stdout)["samples"] == json.loads(result.stdout)["samples"]


def test_the_scan_table_points_to_the_report(
    source: Path, known_list: Path, tmp_path: Path
) -> None:
    out = tmp_path / "scan"
    result = run_cli("scan", str(source), "--list", str(known_list), "--out", str(out), "-q")
    assert result.returncode == 0, result.stderr
    assert f"report: {out / 'report.html'}" in result.stdout


def test_progress_lines_come_periodically_then_a_final_one() -> None:
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=False, width=200)
    with track("scanning", 4, quiet=False, interval=0.01, console=console) as tracker:
        assert isinstance(tracker, LineTracker)
        tracker.advance(0, units=1)  # resumed: counted as done, not towards the rate
        tracker.advance(10)
        for _ in range(500):  # wait (up to 5 s) for the ticker thread to print
            if "ETA" in buf.getvalue():
                break
            __import__("time").sleep(0.01)
        tracker.advance(5)
    lines = buf.getvalue().splitlines()
    periodic, final = lines[:-1], lines[-1]
    assert periodic and all(
        re.fullmatch(r"scanning: [0-3]/4 shards, \d+ samples, [\d,]+/s, elapsed .*, ETA .*", ln)
        for ln in periodic
    ), lines
    assert re.fullmatch(r"scanning: 3/4 shards, 15 samples in 0:00:\d\d \([\d,]+/s\), done", final)


def test_a_terminal_still_gets_the_bar() -> None:
    console = Console(file=io.StringIO(), force_terminal=True, width=120)
    with track("scanning", 2, quiet=False, console=console) as tracker:
        assert not isinstance(tracker, LineTracker)
        tracker.advance(3)
    assert "3 samples" in console.file.getvalue()


def test_quiet_prints_nothing() -> None:
    console = Console(file=io.StringIO(), force_terminal=False)
    with track("scanning", 2, quiet=True, console=console) as tracker:
        tracker.advance(3, units=2)
    assert console.file.getvalue() == ""
