"""The end of a scan, which runs after every shard is done: expansion's search of every
sample's descriptors (``safeset.expansion``) and the summary and manifest
(``ScanDir.write_reports``), this checkout vs another's, side by side in one run.

On Ray all of it runs in the driver, and the reports do on every engine: at a 1,000-worker
cluster's speed, microseconds a sample here are what the whole scan waits for. Builds
bench_scan.py's inputs (~512 px JPEGs, 0.2% of samples hits), scans them once with this
checkout, then times both steps on that scan folder in fresh processes (imports included: a
scan pays them too), taking turns between the checkouts. The folder's results are already
expanded, as on a resumed scan, so both sides read and search every shard and rewrite none.
This checkout also runs the search split over --workers local processes, as
`scan --workers N` does.

    python bench/bench_scan_end.py --baseline-src ../main-before/src     # 20,000 samples
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scan import build_list, jpeg_pool, write_shards

HERE = str(Path(__file__).resolve().parents[1] / "src")


def worker(folder: str, workers: int) -> None:
    """--worker: wall seconds of expansion (its search in `workers` local processes, where
    given) and of the reports on FOLDER, under whichever safeset PYTHONPATH names (what they
    import on first use, e.g. pyarrow.dataset, included; safeset itself is already imported
    by bench_scan)."""
    import pyarrow as pa

    from safeset.expansion import expand
    from safeset.store import ScanDir

    pa.array([0])  # pyarrow's one-off pandas import, which a scan has made before its end
    scan = ScanDir(Path(folder))
    imported = time.perf_counter()
    if workers:
        from safeset.engines import LocalEngine

        counts = expand(scan, engine=LocalEngine(workers))
    else:
        counts = expand(scan)
    expanded = time.perf_counter()
    summary = scan.write_reports({})
    done = time.perf_counter()
    print(json.dumps({
        "expand": expanded - imported, "reports": done - expanded,
        "near": counts.near, "samples": summary["samples"],
    }))  # fmt: skip


def timed(folder: Path, src: str, workers: int = 0) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", str(folder), "--workers", str(workers)],
        env={**os.environ, "PYTHONPATH": src},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--samples", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=3, help="alternating turns of each checkout")
    ap.add_argument("--baseline-src", help="src folder of the code to compare (required)")
    ap.add_argument("--workers", type=int, default=2, help="this checkout's search processes")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args.worker, args.workers)
    if not args.baseline_src:
        ap.error("--baseline-src is required")

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        pool = jpeg_pool(1000)
        saved = build_list(pool, 1000, tmp, "list", planted=2)
        shards = write_shards(pool, args.samples, tmp / "shards")
        scan = tmp / "scan"
        command = [sys.executable, "-m", "safeset", "scan", str(shards), "--list", str(saved)]
        subprocess.run([*command, "--out", str(scan), "--quiet"], check=True, capture_output=True)
        best: dict[str, dict[str, float]] = {}
        checks = set()
        for _ in range(args.rounds):
            sides = [
                ("this checkout", HERE, 0),
                (f"this, {args.workers} workers", HERE, args.workers),
                ("baseline", args.baseline_src, 0),
            ]
            for label, src, workers in sides:
                result = timed(scan, src, workers)
                checks.add((result.pop("near"), result.pop("samples")))
                for step, seconds in result.items():
                    mine = best.setdefault(label, {})
                    mine[step] = min(mine.get(step, seconds), seconds)
    if len(checks) != 1:
        raise SystemExit(f"the checkouts disagree on (near-copies, samples): {sorted(checks)}")
    (near, samples), = checks  # fmt: skip
    print(f"\n{samples:,} samples scanned, {near} near-copies; best of {args.rounds} turns, wall")
    print(f"{'':<16} {'expansion s':>12} {'reports s':>10} {'us/sample':>10}")
    for label, steps in best.items():
        per_sample = 1e6 * (steps["expand"] + steps["reports"]) / samples
        print(f"{label:<16} {steps['expand']:>12.3f} "
              f"{steps['reports']:>10.3f} {per_sample:>10.1f}")  # fmt: skip
    ours, base = (best[k]["expand"] + best[k]["reports"] for k in ("this checkout", "baseline"))
    print(f"\nexpansion + reports, one process: {base / ours:.1f}x faster than the baseline "
          f"({1e6 * ours / samples:.1f} vs {1e6 * base / samples:.1f} us a sample)")  # fmt: skip
    split = best[f"this, {args.workers} workers"]["expand"]
    print(f"expansion's search in {args.workers} local workers: "
          f"{best['this checkout']['expand'] / split:.2f}x one process's")  # fmt: skip


if __name__ == "__main__":
    main()
