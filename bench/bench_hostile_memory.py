"""Peak memory of one scan worker on hostile inputs: this checkout vs another (e.g. main).

Each case builds its input, then runs ``safeset scan`` (and ``clean`` where it matters) with
``--workers 1`` in a subprocess, once with this checkout's code and once with the code under
``--baseline-src`` (the obvious alternative: what the project did before), side by side, and
prints the peak resident set size (``ru_maxrss`` of the child) of each and their ratio.

    python bench/bench_hostile_memory.py --baseline-src ../main/src          # full sizes
    python bench/bench_hostile_memory.py --baseline-src ../main/src --quick  # a quarter

Cases (the issue's own sizes; --quick divides the sizes by 4):
  png-rgba      an 11580 x 11580 RGBA PNG (zero pixels, ~0.6 MB file) just under the pixel cap
  screen-wide   --screen on a 30000 x 200 JPEG
  screen-line   --screen on a 65000 x 1 PNG (a few hundred bytes)
  targz         a .tar.gz shard whose one member inflates to 3 GiB (~3 MB compressed)
  parquet       one 430 MB Parquet row group of image-sized blobs, pages of a few blobs
  parquet-defaults  the same written with pyarrow's defaults (~200 MB pages, see below)
  tiny          one small PNG: the interpreter's and libraries' own footprint
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import struct
import subprocess
import sys
import tarfile
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

HERE_SRC = Path(__file__).resolve().parents[1] / "src"


def zero_png(path: Path, width: int, height: int, color_type: int = 6) -> None:
    """A valid PNG of zero pixels, compressed as it is written (never whole in memory)."""
    channels = {0: 1, 2: 3, 6: 4}[color_type]

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    compressor = zlib.compressobj(9)
    row = b"\0" * (1 + width * channels)
    idat = bytearray()
    for _ in range(height):
        idat += compressor.compress(row)
    idat += compressor.flush()
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)))
        f.write(chunk(b"IDAT", bytes(idat)))
        f.write(chunk(b"IEND", b""))


def smooth(size: tuple[int, int], seed: int = 0) -> Image.Image:
    small = np.random.default_rng(seed).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    return Image.fromarray(small).resize(size, Image.BICUBIC)


def gz_tar_of_zeros(path: Path, size: int) -> None:
    with gzip.open(path, "wb", compresslevel=1) as gz, tarfile.open(fileobj=gz, mode="w") as tf:
        info = tarfile.TarInfo("big.png")
        info.size = size

        class Zeros(io.RawIOBase):
            left = size

            def readable(self) -> bool:
                return True

            def readinto(self, b) -> int:
                n = min(len(b), self.left)
                b[:n] = bytes(n)
                self.left -= n
                return n

        tf.addfile(info, io.BufferedReader(Zeros(), 1 << 20))


def parquet_row_group(path: Path, total: int, *, small_pages: bool, blob: int = 200_000) -> None:
    """One row group of ``total`` bytes of 200 kB blobs. pyarrow's defaults check the page size
    only every 1,024 values, so its pages (and first dictionary page) hold ~200 MB here, which
    any reader must hold whole; ``small_pages`` writes pages of a few blobs instead."""
    rng = np.random.default_rng(0)
    n = max(1, total // blob)
    blobs = [rng.bytes(blob) for _ in range(n)]
    table = pa.table({"key": [f"{i:06d}" for i in range(n)], "jpg": pa.array(blobs, pa.binary())})
    layout = {"write_batch_size": 8, "use_dictionary": False} if small_pages else {}
    pq.write_table(table, path, row_group_size=n, **layout)


def peak_rss_mb(src: Path, args: list[str]) -> tuple[float, int]:
    """Peak RSS of ``safeset ARGS`` run with the code under ``src``, through GNU time: a child
    forked straight from this (large) process would count this process's pages too."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    proc = subprocess.run(
        ["/usr/bin/time", "-f", "maxrss_kb=%M", sys.executable, "-m", "safeset", *args],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines = proc.stderr.strip().splitlines()
    if proc.returncode != 0:
        print(f"    exit {proc.returncode}: {lines[-2:-1]}")
    return int(lines[-1].split("=")[1]) / 1024, proc.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-src", type=Path, required=True)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--cases", default="tiny,png-rgba,screen-wide,screen-line,targz,parquet,parquet-defaults"
    )
    opts = parser.parse_args()
    div = 4 if opts.quick else 1
    wanted = opts.cases.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "list.txt").write_text("md5 " + "0" * 32 + "\n")
        cases: dict[str, tuple[Path, list[str], bool]] = {}  # name -> (source, extra, clean)
        for name in wanted:
            data = root / name
            data.mkdir()
            if name == "tiny":
                smooth((64, 64)).save(data / "a.png")
                cases[name] = (data, [], False)
            elif name == "png-rgba":
                side = 11580 // (2 if opts.quick else 1)
                zero_png(data / "big.png", side, side)
                cases[name] = (data, [], False)
            elif name == "screen-wide":
                smooth((30000 // div, 200)).save(data / "wide.jpg", quality=90)
                cases[name] = (data, ["--screen"], False)
            elif name == "screen-line":
                Image.new("RGB", (65000 // div, 1), (120, 30, 40)).save(data / "line.png")
                cases[name] = (data, ["--screen"], False)
            elif name == "targz":
                gz_tar_of_zeros(data / "00000.tar.gz", (3 << 30) // div)
                cases[name] = (data, [], False)
            elif name in ("parquet", "parquet-defaults"):
                small = name == "parquet"
                parquet_row_group(data / "one.parquet", 430_000_000 // div, small_pages=small)
                cases[name] = (data / "one.parquet", [], True)
        print(f"{'case':<18}{'step':<7}{'this MB':>10}{'baseline MB':>13}{'ratio':>8}")
        for name, (source, extra, clean) in cases.items():
            steps = ["scan", "clean"] if clean else ["scan"]
            for step in steps:
                figures = []
                for label, src in (("this", HERE_SRC), ("base", opts.baseline_src)):
                    scan_dir = root / f"scan-{name}-{label}"
                    if step == "scan":
                        args = ["scan", str(source), "--list", str(root / "list.txt"),
                                "--out", str(scan_dir), "-q", "--workers", "1", *extra]  # fmt: skip
                    else:
                        args = ["clean", str(source), "--scan", str(scan_dir),
                                "--out", str(root / f"clean-{name}-{label}"), "-q"]  # fmt: skip
                    figures.append(peak_rss_mb(src, args)[0])
                this, base = figures
                print(f"{name:<18}{step:<7}{this:>10.0f}{base:>13.0f}{base / this:>8.1f}x")


if __name__ == "__main__":
    main()
