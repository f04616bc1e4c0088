"""End to end: `safeset scan` of a WebDataset against a 1M-entry list vs the bare hash pass.

Builds its own inputs (512 px JPEG crops of scikit-image's bundled photos, cycled through a pool
so building stays quick; a PDQ list of random hashes plus the hashes of some pool images), then
in one run measures:

- the hash pass alone (md5 + sha1 + sha256 + PDQ with quality, one core, in this process);
- `safeset scan` with --workers 1 and 2 (a subprocess each, the saved list loaded from disk);
- peak resident memory of the scan processes, for two dataset sizes.

    python bench/bench_scan.py                       # 20,000 and 100,000 samples, 1M list
    python bench/bench_scan.py --samples 2000 --big 0 --list-size 100000   # quick
"""

from __future__ import annotations

import argparse
import io
import os
import random
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from safeset.examples import DISTRACTOR_SOURCES, KNOWN, bundled_photo
from safeset.signals.cryptographic import MD5, SHA1, SHA256
from safeset.signals.image import image_facts


def jpeg_pool(size: int, seed: int = 0) -> list[bytes]:
    rng = random.Random(seed)
    photos = [bundled_photo(n, max_side=1024) for n in KNOWN + DISTRACTOR_SOURCES]
    pool = []
    for _ in range(size):
        img = rng.choice(photos)
        w, h = rng.randint(img.width // 2, img.width), rng.randint(img.height // 2, img.height)
        x, y = rng.randint(0, img.width - w), rng.randint(0, img.height - h)
        crop = img.crop((x, y, x + w, y + h))
        crop.thumbnail((512, 512), Image.LANCZOS)
        buf = io.BytesIO()
        crop.save(buf, "JPEG", quality=rng.randint(70, 95))
        pool.append(buf.getvalue())
    return pool


def write_shards(pool: list[bytes], samples: int, root: Path, per_shard: int = 1000) -> Path:
    root.mkdir(parents=True)
    for start in range(0, samples, per_shard):
        with tarfile.open(root / f"{start // per_shard:05d}.tar", "w") as tf:
            for n in range(start, min(start + per_shard, samples)):
                for name, blob in ((f"{n:09d}.jpg", pool[n % len(pool)]), (f"{n:09d}.txt", b"x")):
                    info = tarfile.TarInfo(name)
                    info.size = len(blob)
                    tf.addfile(info, io.BytesIO(blob))
    return root


def write_list(pool: list[bytes], entries: int, path: Path, planted: int = 20) -> None:
    rng = np.random.default_rng(1)
    hashes = rng.integers(0, 256, (entries, 32), dtype=np.uint8)
    for i in range(min(planted, entries)):
        hashes[i] = np.frombuffer(image_facts(pool[i]).pdq.hash, dtype=np.uint8)
    with open(path, "w") as f:
        f.writelines(f"pdq {row.tobytes().hex()}\n" for row in hashes)


def hash_pass(pool: list[bytes], samples: int) -> float:
    started = time.perf_counter()
    for n in range(samples):
        data = pool[n % len(pool)]
        for digest in (MD5(), SHA1(), SHA256()):
            digest.compute(data)
        image_facts(data)
    return samples / (time.perf_counter() - started)


def scan(source: Path, saved_list: Path, out: Path, workers: int) -> tuple[float, float]:
    """Seconds taken and the largest peak RSS (MB) among the scan's processes."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "safeset",
            "scan",
            str(source),
            "--list",
            str(saved_list),
            "--out",
            str(out),
            "--workers",
            str(workers),
            "--quiet",
        ],
        stdout=subprocess.DEVNULL,
    )
    # wait4 reports this scan's own peak (its largest process), not all children ever run.
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"scan failed with status {status}")
    return time.perf_counter() - started, usage.ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--samples", type=int, default=20_000)
    ap.add_argument("--big", type=int, default=100_000, help="second size for memory (0: skip)")
    ap.add_argument("--list-size", type=int, default=1_000_000)
    ap.add_argument("--pool", type=int, default=1000)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        pool = jpeg_pool(args.pool)
        write_list(pool, args.list_size, tmp / "list.txt")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "safeset",
                "lists",
                "build",
                str(tmp / "list.txt"),
                "--out",
                str(tmp / "list"),
            ],
            check=True,
            capture_output=True,
        )
        shards = write_shards(pool, args.samples, tmp / "shards")

        rate_hash = hash_pass(pool, min(args.samples, 4000))
        rows = [("hash pass alone (1 core, in process)", rate_hash, None)]
        for workers in (1, 2):
            elapsed, peak = scan(shards, tmp / "list", tmp / f"scan{workers}", workers)
            rows.append((f"safeset scan --workers {workers}", args.samples / elapsed, peak))
        if args.big:
            big = write_shards(pool, args.big, tmp / "big")
            elapsed, peak = scan(big, tmp / "list", tmp / "scan-big", 2)
            rows.append(
                (f"safeset scan --workers 2, {args.big:,} samples", args.big / elapsed, peak)
            )

    print(f"\n{args.samples:,} samples of ~512 px JPEG, list of {args.list_size:,} PDQ hashes\n")
    print(f"{'what':<44} {'samples/s':>10} {'vs hash pass':>13} {'peak RSS MB':>12}")
    for name, rate, peak in rows:
        peak_s = f"{peak:,.0f}" if peak else "-"
        print(f"{name:<44} {rate:>10,.0f} {rate / rate_hash:>12.2f}x {peak_s:>12}")
    w1, w2 = rows[1][1], rows[2][1]
    print(f"\n--workers 2 vs --workers 1: {w2 / w1:.2f}x")


if __name__ == "__main__":
    main()
