"""Datasets as img2dataset itself writes them, from benign photos served on 127.0.0.1.

Shared by tests/test_img2dataset.py (a small set) and bench/bench_img2dataset.py (124 photos).
The photos are seeded mosaics of crops of scikit-image's bundled photos, in varied aspect
ratios and sizes, each different from every other; the first ``known`` play the part of a hash
list's entries, the rest are distractors. The list is ThreatExchange-style CSV holding what
real lists hold for the originals: PDQ by Meta's reference hasher on the full decode, md5 and
sha256 of the file.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from safeset.signals.image import image_facts
from tests.urlserver import serving

SOURCES = (
    "astronaut", "brick", "camera", "chelsea", "clock", "coffee", "coins", "colorwheel",
    "grass", "gravel", "horse", "hubble_deep_field", "immunohistochemistry", "moon", "page",
    "retina", "rocket", "text", "cell",
)  # fmt: skip
ASPECTS = (4 / 3, 3 / 4, 16 / 9, 3 / 2, 2 / 3, 1.0, 5 / 4, 9 / 16)

#: (name, img2dataset arguments) of the modes the issue names.
MODES = {
    "border-256": {"resize_mode": "border", "image_size": 256},
    "center_crop-256": {"resize_mode": "center_crop", "image_size": 256},
    "keep_ratio-384": {"resize_mode": "keep_ratio", "image_size": 384},
    "no-resize": {"resize_mode": "no", "skip_reencode": True},
}
FORMATS = ("webdataset", "parquet")


def _sources() -> list[Image.Image]:
    import skimage.data

    out = []
    for name in SOURCES:
        pixels = getattr(skimage.data, name)()
        if pixels.dtype == bool:
            pixels = pixels.astype(np.uint8) * 255
        out.append(Image.fromarray(pixels).convert("RGB"))
    return out


def photos(count: int, seed: int = 0) -> list[bytes]:
    """``count`` distinct JPEG photos: 2x2 mosaics of random crops, random aspect and size."""
    rng = np.random.default_rng(seed)
    sources = _sources()
    out = []
    for _ in range(count):
        aspect = ASPECTS[rng.integers(len(ASPECTS))]
        long_side = int(rng.integers(320, 720))
        w, h = (long_side, round(long_side / aspect)) if aspect >= 1 else (
            round(long_side * aspect), long_side)  # fmt: skip
        canvas = Image.new("RGB", (w, h))
        cx, cy = int(w * rng.uniform(0.35, 0.65)), int(h * rng.uniform(0.35, 0.65))
        for box in ((0, 0, cx, cy), (cx, 0, w, cy), (0, cy, cx, h), (cx, cy, w, h)):
            src = sources[rng.integers(len(sources))]
            bw, bh = box[2] - box[0], box[3] - box[1]
            f = rng.uniform(0.3, 0.8)
            sw, sh = max(8, int(src.width * f)), max(8, int(src.height * f))
            x, y = (
                int(rng.integers(0, src.width - sw + 1)),
                int(rng.integers(0, src.height - sh + 1)),
            )
            canvas.paste(src.crop((x, y, x + sw, y + sh)).resize((bw, bh)), box[:2])
        buf = io.BytesIO()
        canvas.save(buf, "JPEG", quality=int(rng.integers(80, 95)))
        out.append(buf.getvalue())
    return out


@dataclass(frozen=True)
class PhotoSet:
    photos: list[bytes]
    known: int  # the first ``known`` photos are in the list

    @property
    def names(self) -> list[str]:
        return [f"p{i:04d}.jpg" for i in range(len(self.photos))]

    def is_known(self, url: str) -> bool:
        return int(url.rsplit("/p", 1)[1].split(".")[0]) < self.known


def write_list(photos: PhotoSet, path: Path) -> Path:
    """ThreatExchange CSV: reference PDQ, md5 and sha256 of each known original."""
    lines = ["signal_type,signal_str,collab,category,tags"]
    for data in photos.photos[: photos.known]:
        lines.append(f"pdq,{image_facts(data, exact_pdq=True).pdq.hex},bench,known,")
        lines.append(f"md5,{hashlib.md5(data).hexdigest()},bench,known,")
        lines.append(f"sha256,{hashlib.sha256(data).hexdigest()},bench,known,")
    path.write_text("\n".join(lines) + "\n")
    return path


@contextmanager
def served(photos: PhotoSet) -> Iterator[list[str]]:
    """The photos on a 127.0.0.1 server; yields their URLs."""
    with serving(dict(zip(photos.names, photos.photos, strict=True))) as server:
        yield [server.url(f"/img/{name}") for name in photos.names]


def run_img2dataset(urls: list[str], out: Path, output_format: str, mode: dict) -> Path:
    """img2dataset's command line over ``urls`` into ``out``, as a user runs it (in a child
    process: its workers are spawned, which re-imports the caller's main module otherwise)."""
    table = out.parent / f"{out.name}-urls.csv"
    table.write_text("url\n" + "\n".join(urls) + "\n")
    args = {
        "url_list": str(table),
        "input_format": "csv",
        "output_format": output_format,
        "output_folder": str(out),
        "processes_count": 1,
        "thread_count": 8,
        "number_sample_per_shard": 50,
        "timeout": 10,
        "retries": 1,
        **mode,
    }
    command = [sys.executable, "-c", "from img2dataset import main; main()"]
    command += [f"--{k}={v}" for k, v in args.items()]
    env = os.environ | {"NO_ALBUMENTATIONS_UPDATE": "1", "WANDB_MODE": "disabled"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    table.unlink()
    if done.returncode != 0:
        raise RuntimeError(f"img2dataset failed: {done.stderr[-2000:]}")
    return out
