"""The scan report's cost next to the scan's own, for a 1,000,000-sample scan.

Scanning a million images here would take a quarter of an hour per run, so the two sides are
measured like this, in one run:

- **the scan's time per sample**: real `safeset scan` runs (subprocesses, all cores) of
  WebDatasets of ~512 px JPEGs (bench_scan.py's inputs) against a saved PDQ list, of N and 2N
  samples. Their difference over N is what each further sample costs (process start, list
  loading and the final reports left out, which makes the scan look faster and the ratio
  stricter), and the larger run's whole-command time over its samples is the other figure. The
  1M scan's time is the smaller of the two per-sample times, times 1,000,000.
- **the report**: 1,000,000 result rows with the real result schema (``store.result_schema`` of
  the default hash types and the screening signals, as a --screen scan writes them), written
  as 1,000 shard files the way a scan writes them (zstd Parquet), with realistic content: hashes
  of the image and of two parts per sample, urls, 1% error rows, explicit scores for every
  sample, faces with ages past the threshold, 0.05% hash matches. ``summary.json`` and
  ``manifest.csv`` are written by the scan's own code (``ScanDir.write_reports``, timed too),
  then ``write_report`` builds the page: timed (best of --repeat) and its size measured.
- the obvious alternative to aggregating in Arrow, side by side: the same counts tallied row by
  row in Python (``to_pylist``), as store.py tallies summary.json.

    python bench/bench_report.py                           # 1M report rows, 10,000-sample scan
    python bench/bench_report.py --rows 100000 --scan-samples 2000   # quick
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scan import jpeg_pool, write_list, write_shards

from safeset.report import write_report
from safeset.report.aggregate import scan_report
from safeset.signals import DEFAULT_HASH_TYPES, SCREENING_SIGNALS, content_signal, hash_type
from safeset.store import ScanDir, result_schema

# The columns a scan with --screen writes (see pipeline.Scanner).
RESULT_SCHEMA = result_schema(
    [hash_type(n) for n in DEFAULT_HASH_TYPES],
    [f for n in SCREENING_SIGNALS for f in content_signal(n).fields],
)

ERRORS = (
    "http 404",
    "timeout: read timed out after 10s",
    "truncated or corrupt image data",
    "connection error: connection refused",
    "not a recognised image format",
)


def _hexes(rng: np.random.Generator, n: int, nbytes: int) -> list[str]:
    text = rng.bytes(n * nbytes).hex()
    w = 2 * nbytes
    return [text[i * w : (i + 1) * w] for i in range(n)]


def result_table(shard: int, start: int, n: int, rng: np.random.Generator) -> pa.Table:
    """``n`` result rows of shard ``shard`` as a scan with --screen writes them."""
    keys = [f"{start + i:09d}" for i in range(n)]
    error_at = rng.random(n) < 0.01
    match_at = (rng.random(n) < 0.0005) & ~error_at
    score = rng.beta(0.6, 12.0, n).astype(np.float32)
    score[error_at] = np.nan
    errors = [
        ERRORS[int(k)] if e else None for e, k in zip(error_at, rng.integers(0, 5, n), strict=True)
    ]
    md5, sha1, sha256, pdq = (_hexes(rng, n, b) for b in (16, 20, 32, 32))
    h = [_hexes(rng, n, size) for size in (16, 20, 32, 16, 20, 32)]
    parts = [
        [
            {"name": f"{k}.{ext}", "md5": h[j][i], "sha1": h[j + 1][i], "sha256": h[j + 2][i]}
            | {"pdq": None, "pdq_quality": None}
            for ext, j in (("txt", 0), ("json", 3))
        ]
        for i, k in enumerate(keys)
    ]
    matches, faces, reasons, actions = [], [], [], []
    for i in range(n):
        m = []
        if match_at[i]:
            d = int(rng.integers(0, 32))
            m = [{"list": "ncmec", "entry": int(rng.integers(1, 10**6)), "signal_type": "pdq"}]
            m[0] |= {"distance": d, "variant": 0, "part": None}
            if d == 0 and rng.random() < 0.5:
                m.append(m[0] | {"signal_type": "md5", "list": "iwf"})
        explicit = not error_at[i] and score[i] >= 0.6
        f = []
        if explicit:
            ages = rng.normal(34, 12, int(rng.integers(0, 3)))
            f = [{"x": 1, "y": 2, "w": 40, "h": 40, "age": float(a), "score": 0.9} for a in ages]
        r = [f"hash:{x['list']}:{x['signal_type']}:d={x['distance']}" for x in m]
        if explicit:
            young = [a["age"] for a in f if a["age"] < 25]
            if young:
                r += ["explicit+minor-indicators"]
            r += [f"explicit:{score[i]:.2f}"] + [f"minor-face:age={a:.0f}" for a in young]
        if error_at[i]:
            r.append(f"error:{errors[i]}")
        matches.append(m)
        faces.append(f)
        reasons.append(r)
        actions.append("remove" if m or explicit else "review" if error_at[i] else "keep")
    columns = {
        "key": keys,
        "source": [f"/data/laion/{shard:05d}.tar"] * n,
        "location": [f"{k}.jpg" for k in keys],
        "index": list(range(n)),
        "shard": [f"s000-{shard:06d}"] * n,
        "url": [f"https://img.example.org/{k}.jpg" for k in keys],
        "md5": md5,
        "sha1": sha1,
        "sha256": sha256,
        "pdq": pdq,
        "pdq_quality": pa.array(rng.integers(60, 101, n), pa.int16()),
        "width": pa.array(rng.integers(256, 1024, n), pa.int32()),
        "height": pa.array(rng.integers(256, 1024, n), pa.int32()),
        "error": errors,
        "parts": parts,
        "explicit_score": pa.array(score, pa.float32(), from_pandas=True),
        "explicit_classes": [[] for _ in range(n)],
        "faces": faces,
        "sexual_terms": [[] for _ in range(n)],
        "minor_terms": [[] for _ in range(n)],
        "matches": matches,
        "action": actions,
        "reasons": reasons,
    }
    return pa.table(
        {f.name: pa.array(columns[f.name], f.type) for f in RESULT_SCHEMA}, schema=RESULT_SCHEMA
    )


def write_results(root: Path, rows: int, per_shard: int) -> ScanDir:
    scan = ScanDir(root)
    shards = range((rows + per_shard - 1) // per_shard)
    job = {
        "sources": [{"kind": "webdataset", "files": [f"/data/laion/{s:05d}.tar" for s in shards]}],
        "lists": [
            {"name": "ncmec", "sha256": "0" * 64, "entries": {"pdq": 1_000_000}},
            {"name": "iwf", "sha256": "1" * 64, "entries": {"md5": 500_000}},
        ],
        "options": {
            "dihedral": False,
            "exact_pdq": False,
            "pdq_threshold": 31,
            "policy": {"screen": True, "thresholds": {"explicit": 0.6, "minor_age": 25.0}},
        },
    }
    scan.prepare(job, force=True)
    rng = np.random.default_rng(0)
    for s in shards:
        n = min(per_shard, rows - s * per_shard)
        scan.write_shard(f"s000-{s:06d}", result_table(s, s * per_shard, n, rng))
    return scan


def python_tally(scan: ScanDir) -> dict[str, object]:
    """The alternative: the report's main counts row by row in Python, as store.py does."""
    actions: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    matches: Counter[tuple[str, str, int]] = Counter()
    reasons: Counter[str] = Counter()
    sources: dict[str, Counter[str]] = {}
    explicit = [0] * 20
    cols = ["source", "error", "matches", "action", "reasons", "explicit_score", "faces"]
    for table in scan.iter_tables(cols):
        for row in table.to_pylist():
            actions[row["action"]] += 1
            sources.setdefault(row["source"], Counter())[row["action"]] += 1
            if row["error"]:
                errors[row["error"].split(":", 1)[0]] += 1
            for m in row["matches"]:
                matches[(m["list"], m["signal_type"], m["distance"])] += 1
            for r in {":".join(x.split(":")[:3]) for x in row["reasons"]}:
                reasons[r] += 1
            if row["explicit_score"] is not None:
                explicit[min(int(row["explicit_score"] * 20), 19)] += 1
    return {"actions": actions, "errors": errors, "matches": matches, "sources": len(sources)}


def _scan_seconds(tmp: Path, shards: Path, name: str) -> float:
    started = time.perf_counter()
    command = [sys.executable, "-m", "safeset", "scan", str(shards), "--list", str(tmp / "list")]
    subprocess.run(
        [*command, "--out", str(tmp / name), "--quiet", "--json"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def real_scan(tmp: Path, samples: int, list_size: int) -> tuple[float, float]:
    """(marginal seconds per sample, whole-command seconds per sample) of real scans.

    Scans of N and 2N samples: their difference over N is the time each further sample costs,
    without process start, list loading and the final reports.
    """
    pool = jpeg_pool(500)
    write_list(pool, list_size, tmp / "list.txt")
    build = [sys.executable, "-m", "safeset", "lists", "build", str(tmp / "list.txt")]
    subprocess.run(
        [*build, "--out", str(tmp / "list")],
        check=True,
        capture_output=True,
    )
    small = _scan_seconds(tmp, write_shards(pool, samples, tmp / "shards-n"), "scan-n")
    big = _scan_seconds(tmp, write_shards(pool, 2 * samples, tmp / "shards-2n"), "scan-2n")
    return (big - small) / samples, big / (2 * samples)


def timed(fn, repeat: int) -> tuple[float, float, object]:
    """Best wall and CPU seconds of ``repeat`` calls, and the last result."""
    walls, cpus, result = [], [], None
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return min(walls), min(cpus), result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000, help="result rows to report on")
    ap.add_argument("--per-shard", type=int, default=1000)
    ap.add_argument("--scan-samples", type=int, default=10_000, help="real scan's size")
    ap.add_argument("--list-size", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-python", action="store_true", help="skip the per-row Python tally")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        marginal, whole = real_scan(tmp, args.scan_samples, args.list_size)

        started = time.perf_counter()
        scan = write_results(tmp / "scan", args.rows, args.per_shard)
        generated = time.perf_counter() - started
        started = time.perf_counter()
        summary = scan.write_reports({"shards": len(scan.shard_ids()), "run": {}})
        write_reports = time.perf_counter() - started
        (tmp / "scan" / "summary.json").write_text(
            json.dumps(
                summary | {"run": {"elapsed_seconds": round(min(marginal, whole) * args.rows)}}
            )
        )

        wall, cpu, page = timed(lambda: write_report(tmp / "scan"), args.repeat)
        size = page.stat().st_size
        agg_wall, _, report = timed(lambda: scan_report(tmp / "scan"), args.repeat)
        assert report.samples == summary["samples"] and report.actions == summary["actions"]
        assert report.matches_by_list() == summary["matches"]
        assert {e["kind"]: e["samples"] for e in report.errors_by_kind} == summary["errors_by_kind"]
        py_wall = py_cpu = None
        if not args.no_python:
            py_wall, py_cpu, _ = timed(lambda: python_tally(scan), 1)
        data_mb = sum(p.stat().st_size for p in (tmp / "scan" / "results").iterdir()) / 2**20

    # The faster of the two per-sample figures: the smaller the scan's time, the stricter the
    # ratio (on a loaded machine the difference of two runs can come out above the whole run's).
    per_sample = min(marginal, whole)
    scan_1m = per_sample * args.rows
    print(f"\nreal scans: {args.scan_samples:,} and {2 * args.scan_samples:,} samples of ~512 px "
          f"JPEG, saved list of {args.list_size:,} PDQ hashes, all cores")  # fmt: skip
    print(f"  marginal {1e3 * marginal:.3f} ms/sample ({1 / marginal:,.0f} samples/s); "
          f"whole command of the larger {1e3 * whole:.3f} ms/sample")  # fmt: skip
    print(f"\nreport input: {args.rows:,} result rows in {args.rows // args.per_shard:,} shard "
          f"files ({data_mb:,.0f} MB zstd Parquet; generated in {generated:.0f} s)")  # fmt: skip
    print(f"  summary.json + manifest.csv (the scan's own write_reports): {write_reports:.1f} s")
    print(f"\n{'what':<52} {'wall s':>8} {'CPU s':>8}")
    print(f"{f'scan of {args.rows:,} samples (per-sample time x samples)':<52} {scan_1m:>8.1f}")
    print(f"{'report: write_report (aggregate + render + write)':<52} {wall:>8.2f} {cpu:>8.2f}")
    print(f"{'  of which aggregation in Arrow':<52} {agg_wall:>8.2f}")
    if py_wall is not None:
        print(f"{'alternative: the main counts row by row in Python':<52} {py_wall:>8.2f} "
              f"{py_cpu:>8.2f}")  # fmt: skip
    ratio = wall / scan_1m
    met = "met" if ratio < 0.02 else "missed"
    print(f"\nreport / scan time: {100 * ratio:.2f}% (target < 2%: {met})")
    met = "met" if size < 5 * 2**20 else "missed"
    print(f"page size: {size / 2**20:.2f} MB (target < 5 MB: {met})")
    if py_wall is not None:
        print(f"Arrow aggregation vs the per-row Python tally: {py_wall / agg_wall:.1f}x faster")


if __name__ == "__main__":
    main()
