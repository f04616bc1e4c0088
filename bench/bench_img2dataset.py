"""Known photos found in datasets as img2dataset writes them, in each of its resize modes.

img2dataset (the downloader behind LAION, DataComp and most web-scale image sets) is run, as a
user runs it, against seeded benign photos served from 127.0.0.1 (``tests/img2dataset_run.py``:
mosaics of scikit-image's bundled photos, varied aspect ratios and sizes), into webdataset and
parquet outputs in the modes ``border`` 256 (its default), ``center_crop`` 256, ``keep_ratio``
384 and ``resize_mode=no`` with ``skip_reencode``. Each output folder is scanned as written
against a ThreatExchange-style CSV holding the reference PDQ (pdqhash on the full decode), md5
and sha256 of the first ``--known`` originals, twice side by side:

- ``safeset``: the default scan (stored bytes, recorded hashes, unpadded variant, expansion);
- ``stored only``: the same scan with recorded hashes ignored and no unpadded variant (what
  matching only the stored bytes gives: the obvious alternative and the state before).

It prints, per mode and format, the known photos removed (of those img2dataset stored), which
signals found them, and every distractor flagged at any tier (the target is none).

    python bench/bench_img2dataset.py                 # 124 photos, 40 known (minutes)
    python bench/bench_img2dataset.py --photos 30 --known 10
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from safeset import api
from safeset.engines import LocalEngine
from safeset.pipeline import ScanOptions
from tests.img2dataset_run import (
    FORMATS,
    MODES,
    PhotoSet,
    photos,
    run_img2dataset,
    served,
    write_list,
)
from tests.support import all_rows

OPTIONS = {
    "safeset": ScanOptions(),
    # Stored bytes only: no recorded hashes, no unpadded variant, no expansion.
    "stored only": ScanOptions(unpad=False, recorded=False, expand=False),
}


def tally(rows: list[dict], photos: PhotoSet) -> dict:
    known = [r for r in rows if photos.is_known(r["url"])]
    removed = [r for r in known if r["action"] == "remove"]
    how: Counter[str] = Counter()
    for r in removed:
        kinds = set()
        for m in r["matches"]:
            if m["part"].startswith("recorded:"):
                kinds.add(f"{m['signal_type']}(recorded)")
            elif m["signal_type"] == "pdq":
                kinds.add("pdq v8 (unpadded)" if m["variant"] == 8 else "pdq")
            else:
                kinds.add(m["signal_type"])
        how.update(kinds)
    flagged = [r for r in rows if not photos.is_known(r["url"]) and r["action"] != "keep"]
    return {"known": len(known), "removed": len(removed), "how": how, "distractors": flagged}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=124)
    parser.add_argument("--known", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-img2dataset-"))
    try:
        photo_set = PhotoSet(photos(args.photos, seed=args.seed), known=args.known)
        hash_list = write_list(photo_set, work / "known.csv")
        print(f"{args.photos} photos served from 127.0.0.1, {args.known} of them in the list")
        print(f"{'mode':<16} {'format':<11} {'scan':<12} {'removed':>9}  found by; distractors")
        ok = True
        with served(photo_set) as urls:
            for mode, mode_args in MODES.items():
                for fmt in FORMATS:
                    out = run_img2dataset(urls, work / f"{fmt}-{mode}", fmt, mode_args)
                    for label, options in OPTIONS.items():
                        scan_dir = work / f"scan-{fmt}-{mode}-{label.replace(' ', '_')}"
                        started = time.monotonic()
                        api.scan(
                            [out], [f"known={hash_list}"], scan_dir, options=options,
                            engine=LocalEngine(workers=1), progress=False,
                        )  # fmt: skip
                        seconds = time.monotonic() - started
                        t = tally(all_rows(scan_dir), photo_set)
                        share = t["removed"] / max(t["known"], 1)
                        how = ", ".join(f"{k} {v}" for k, v in sorted(t["how"].items()))
                        print(
                            f"{mode:<16} {fmt:<11} {label:<12} {t['removed']:>3}/{t['known']:<3}"
                            f" {share:4.0%}  {how}; distractors flagged: {len(t['distractors'])}"
                            f" ({seconds:.1f}s)"
                        )
                        if label == "safeset":
                            ok &= share >= 0.95 and not t["distractors"]
        print(
            "targets (>= 95% removed in every mode, no distractor flagged):",
            "met" if ok else "NOT met",
        )
        return 0 if ok else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
