"""Reading WebDataset shards: safeset's member reader vs ``tarfile``, side by side, one core.

Builds its own shards (img2dataset's layout: ``KEY.jpg``, ``KEY.txt``, ``KEY.json`` per sample,
written by ``tarfile``), then times, in alternating rounds, CPU seconds of:

- ``tarfile``: ``tarfile.open`` + iterating the members + ``extractfile().read()`` (what any
  tar reader in Python does, and what safeset did before);
- safeset: ``formats.tar_members.read_members`` (plain headers parsed by safeset, anything
  else handed to ``tarfile``), bytes read the same;
- samples: ``TarShard.read()``, the whole of a scan's reading (grouping, sample objects).

    python bench/bench_tar.py                  # 20,000 samples
    python bench/bench_tar.py --samples 2000   # quick
"""

from __future__ import annotations

import argparse
import io
import json
import os
import tarfile
import tempfile
import time
from pathlib import Path

from safeset.formats.tar_members import read_members
from safeset.formats.webdataset import TarShard


def write_shards(root: Path, samples: int, per_shard: int = 5000) -> list[Path]:
    paths = []
    for start in range(0, samples, per_shard):
        path = root / f"{start // per_shard:05d}.tar"
        with tarfile.open(path, "w") as tf:
            for n in range(start, min(start + per_shard, samples)):
                meta = {"url": f"https://example.com/{n}.jpg", "width": 512, "height": 384}
                for name, blob in (
                    (f"{n:09d}.jpg", os.urandom(20_000 + n % 9_000)),
                    (f"{n:09d}.txt", f"a photo, number {n}".encode()),
                    (f"{n:09d}.json", json.dumps(meta).encode()),
                ):
                    info = tarfile.TarInfo(name)
                    info.size = len(blob)
                    tf.addfile(info, io.BytesIO(blob))
        paths.append(path)
    return paths


def with_tarfile(paths: list[Path]) -> int:
    total = 0
    for path in paths:
        with tarfile.open(path, "r:*") as tf:
            for info in tf:
                if info.isfile():
                    total += len(tf.extractfile(info).read())
    return total


def with_safeset(paths: list[Path]) -> int:
    total = 0
    for path in paths:
        for _member, read in read_members(path):
            data = read()
            total += len(data) if data is not None else 0
    return total


def samples(paths: list[Path]) -> int:
    return sum(1 for path in paths for _ in TarShard(id="x", path=str(path)).read())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--samples", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_shards(Path(tmp), args.samples)
        runs = {"tarfile": with_tarfile, "safeset read_members": with_safeset}
        runs["safeset TarShard.read (samples)"] = samples
        cpu = dict.fromkeys(runs, float("inf"))
        results = {}
        for _ in range(args.rounds):  # alternating, best of the rounds
            for name, fn in runs.items():
                started = time.process_time()
                results[name] = fn(paths)
                cpu[name] = min(cpu[name], time.process_time() - started)
        assert results["tarfile"] == results["safeset read_members"], "different bytes read"
        assert results["safeset TarShard.read (samples)"] == args.samples
    print(f"{args.samples:,} samples (3 members each), best of {args.rounds} rounds, CPU time")
    for name, seconds in cpu.items():
        print(f"{name:<34} {1e6 * seconds / args.samples:7.1f} us/sample")
    ratio = cpu["tarfile"] / cpu["safeset read_members"]
    print(f"read_members vs tarfile: {ratio:.2f}x faster")


if __name__ == "__main__":
    main()
