"""End to end: `safeset scan` of a WebDataset with a real-size saved list vs a small one, and
vs the bare hash pass, side by side in one run.

Builds its own inputs (~512 px JPEG crops of scikit-image's bundled photos, cycled through a
pool so building stays quick; PDQ lists of random hashes plus the hashes of --planted pool
images, saved with `safeset lists build`), then measures:

- in this process, on one core, taking turns shard by shard: the hash pass alone (md5 + sha1 +
  sha256 + PDQ with quality), all the hashing a scan does per sample (that, plus the unpadded
  PDQ variant, the caption's md5/sha1/sha256 and the near-copy descriptors), so that what a
  scan adds to it shows, and the floor of a scan: reading the samples from the shards and all
  that hashing, nothing else;
- `safeset scan --workers 1` and `--workers 2` with the small list and with the big one (a
  subprocess each, the saved list memory-mapped from disk), in rounds that
  alternate so drifting load hits all alike; samples/s by wall time and per CPU-second (the
  scan's processes together; the machine may be shared);
- with --baseline-src, the same `--workers 1` scans run by another checkout's code (e.g. main
  before a change), through PYTHONPATH;
- peak resident memory of the scan processes.

A hit costs the end of the scan a search of every sample's descriptors near it (expansion):
the default 2 planted images of the 1,000 in the pool make 0.2% of samples hits, already
thousands of times LAION-5B's rate (--planted 20, 2%, makes that search a second's work).

    python bench/bench_scan.py                        # 10,000 samples, lists of 1k and 10M
    python bench/bench_scan.py --samples 2000 --list-size 100000 --rounds 1   # quick
"""

from __future__ import annotations

import argparse
import io
import itertools
import os
import random
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from safeset.examples import DISTRACTOR_SOURCES, KNOWN, bundled_photo
from safeset.pipeline import MATCH_BATCH
from safeset.sample import Sample
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


def hash_pass(data: bytes) -> None:
    """The hash pass of one image: md5 + sha1 + sha256 + PDQ with quality."""
    for digest in (MD5(), SHA1(), SHA256()):
        digest.compute(data)
    image_facts(data)


def scan_hashing(samples: list[tuple[bytes, bytes]]) -> None:
    """All the hashing a scan does for a batch of (image, caption) samples: the hash pass of
    each image, its unpadded PDQ variant, the caption's digests, and the near-copy
    descriptors of the batch in one product (as ``signals.near`` computes them)."""
    from safeset.signals.base import ComputeOptions
    from safeset.signals.image import ImageView
    from safeset.signals.near import CANDIDATE_BOXES
    from safeset.signals.pdq import PDQ
    from safeset.signals.regions import buffer_hashes

    buffers = []
    for data, caption in samples:
        for blob in (data, caption):
            for digest in (MD5(), SHA1(), SHA256()):
                digest.compute(blob)
        view = ImageView(data)
        PDQ().compute(view, ComputeOptions(unpad=True))
        buffers.append(view.pdq_buffer)
    buffer_hashes(np.stack(buffers), CANDIDATE_BOXES)


IN_PROCESS = ("hash pass", "all of a scan's hashing", "floor")
REPEATS = 2  # of each in-process pass over a shard, the faster counting: load only adds time


def _pass_cpu(name: str, path: Path, loaded: list[tuple[bytes, bytes]]) -> float:
    """CPU seconds of one in-process pass over one shard's first ``len(loaded)`` samples."""
    started = time.process_time()
    if name == "hash pass":
        for data, _ in loaded:
            hash_pass(data)
    elif name == "floor":
        read = _read(path, len(loaded))
        while batch := [(s.load(), s.parts[0].load()) for s in itertools.islice(read, MATCH_BATCH)]:
            scan_hashing(batch)
    else:
        for start in range(0, len(loaded), MATCH_BATCH):
            scan_hashing(loaded[start : start + MATCH_BATCH])
    return time.process_time() - started


def _read(path: Path, most: int) -> Iterator[Sample]:
    """The first `most` samples of a shard, read by safeset's tar reader."""
    from safeset.formats.webdataset import TarShard

    return itertools.islice(TarShard(id="", path=str(path)).read(), most)


def in_process_cpu(shards: Path, samples: int) -> tuple[dict[str, float], int]:
    """CPU seconds (one core, this process) of three passes over the first `samples` samples,
    and how many they were; shard by shard, taking turns (which goes first rotates) and
    keeping the faster of REPEATS, so that drifting load hits all three alike:

    - the hash pass of each image;
    - all of a scan's hashing: that, plus the unpadded PDQ variant, the caption's digests and
      the near-copy descriptors;
    - the floor of a scan: reading the samples from the shard file (safeset's tar reader) and
      all that hashing; nothing else (no imports, matching, policy, result rows or files).
    """
    spent, done = dict.fromkeys(IN_PROCESS, 0.0), 0
    for turn, path in enumerate(sorted(shards.glob("*.tar"))):
        if done >= samples:
            break
        loaded = [(s.load(), s.parts[0].load()) for s in _read(path, samples - done)]
        for name in IN_PROCESS[turn % 3 :] + IN_PROCESS[: turn % 3]:
            spent[name] += min(_pass_cpu(name, path, loaded) for _ in range(REPEATS))
        done += len(loaded)
    return spent, done


def scan(
    source: Path, saved_list: Path, out: Path, workers: int, src: str | None = None
) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (the scan and its workers) and the largest peak RSS (MB)."""
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = src
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
        env=env,
    )
    # wait4 reports this scan's own peak (its largest process) and the CPU time of it and of
    # the workers it reaped.
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"scan failed with status {status}")
    shutil.rmtree(out)
    return time.perf_counter() - started, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def build_list(pool: list[bytes], entries: int, folder: Path, name: str, planted: int) -> Path:
    write_list(pool, entries, folder / f"{name}.txt", planted)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "safeset",
            "lists",
            "build",
            str(folder / f"{name}.txt"),
            "--out",
            str(folder / name),
        ],
        check=True,
        capture_output=True,
    )
    (folder / f"{name}.txt").unlink()
    return folder / name


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--samples", type=int, default=10_000)
    ap.add_argument("--list-size", type=int, default=10_000_000)
    ap.add_argument("--small-list", type=int, default=1_000)
    ap.add_argument("--pool", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds of every scan")
    ap.add_argument(
        "--planted",
        type=int,
        default=2,
        help="pool images whose PDQ the lists hold (hits: planted / pool of the samples)",
    )
    ap.add_argument("--baseline-src", default=None, help="src folder of the code to compare")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        pool = jpeg_pool(args.pool)
        small = build_list(pool, args.small_list, tmp, "small", args.planted)
        big = build_list(pool, args.list_size, tmp, "big", args.planted)
        shards = write_shards(pool, args.samples, tmp / "shards")
        runs = [
            (f"scan --workers 1, {args.small_list:,}-entry list", small, 1, None),
            (f"scan --workers 1, {args.list_size:,}-entry list", big, 1, None),
            (f"scan --workers 2, {args.list_size:,}-entry list", big, 2, None),
            (f"scan --workers 2, {args.small_list:,}-entry list", small, 2, None),
        ]
        if args.baseline_src:
            runs += [
                (f"baseline: scan --workers 1, {args.small_list:,}", small, 1, args.baseline_src),
                (f"baseline: scan --workers 1, {args.list_size:,}", big, 1, args.baseline_src),
            ]
        totals = {name: [0.0, 0.0, 0.0] for name, *_ in runs}
        for data in pool:  # each image size's resampling operators, built before any timing
            image_facts(data)
        passes, counted = dict.fromkeys(IN_PROCESS, 0.0), 0
        for _ in range(args.rounds):
            spent, done = in_process_cpu(shards, min(args.samples, 4000))
            counted += done
            for name, seconds in spent.items():
                passes[name] += seconds
            for name, saved, workers, src in runs:
                wall, cpu, peak = scan(shards, saved, tmp / "out", workers, src)
                totals[name][0] += wall
                totals[name][1] += cpu
                totals[name][2] = max(totals[name][2], peak)
        rate_hash, rate_hashing, rate_floor = (counted / passes[name] for name in IN_PROCESS)

    n = args.samples * args.rounds
    print(
        f"\n{args.samples:,} samples of ~512 px JPEG x {args.rounds} rounds; lists of "
        f"{args.small_list:,} and {args.list_size:,} PDQ hashes (saved, memory-mapped)\n"
    )
    print(f"{'what':<46} {'samples/s':>10} {'per CPU-s':>10} {'vs hash pass':>13} {'RSS MB':>8}")
    print(
        f"{'hash pass alone (1 core, in process)':<46} {'-':>10} {rate_hash:>10,.0f} "
        f"{1:>12.2f}x {'-':>8}"
    )
    label = "all of a scan's hashing (1 core, in process)"
    print(
        f"{label:<46} {'-':>10} {rate_hashing:>10,.0f} {rate_hashing / rate_hash:>12.2f}x {'-':>8}"
    )
    label = "floor: reading the shards + all that hashing"
    print(f"{label:<46} {'-':>10} {rate_floor:>10,.0f} {rate_floor / rate_hash:>12.2f}x {'-':>8}")
    rate = {}
    for name, (wall, cpu, peak) in totals.items():
        rate[name] = (n / wall, n / cpu)
        print(
            f"{name:<46} {n / wall:>10,.0f} {n / cpu:>10,.0f} {n / wall / rate_hash:>12.2f}x "
            f"{peak:>8,.0f}"
        )
    w1_small, w1_big, w2_big, w2_small = (rate[name] for name, *_ in runs[:4])
    print()
    print(
        f"big list vs small list, --workers 1: {w1_big[0] / w1_small[0]:.2f}x wall, "
        f"{w1_big[1] / w1_small[1]:.2f}x per CPU-s (target >= 0.90)"
    )
    print(
        f"scan --workers 1 (big list) vs hash pass: {w1_big[0] / rate_hash:.2f}x wall "
        f"(target >= 0.85); vs all of its hashing: {w1_big[0] / rate_hashing:.2f}x "
        f"(small list: {w1_small[0] / rate_hashing:.2f}x)"
    )
    print(
        f"--workers 2 vs --workers 1 (big list): {w2_big[0] / w1_big[0]:.2f}x wall "
        f"(target >= 1.85; the machine has {os.cpu_count()} cores); small list: "
        f"{w2_small[0] / w1_small[0]:.2f}x"
    )
    if args.baseline_src:
        b_small, b_big = (rate[name] for name, *_ in runs[4:])
        print(f"baseline big list vs small list, --workers 1: {b_big[0] / b_small[0]:.2f}x wall")
        print(
            f"this checkout vs baseline, --workers 1, big list: {w1_big[0] / b_big[0]:.2f}x "
            f"wall, {w1_big[1] / b_big[1]:.2f}x per CPU-s"
        )


if __name__ == "__main__":
    main()
