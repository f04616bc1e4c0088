"""Benign stand-in datasets: "known" photos hidden, transformed, among unrelated distractors.

No abusive or explicit imagery is ever involved: the "known" items are scikit-image's bundled
photos (an astronaut portrait, a cat, a coffee cup...), which play the role that entries of a
child-protection hash list play in real use. The demo and the tests build their data here.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, ImageEnhance, ImageFilter

from safeset.errors import SafesetError
from safeset.signals.image import image_facts

# File names in scikit-image's wheel (its ``data`` folder), so no download is ever needed.
KNOWN = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png")
DISTRACTOR_SOURCES = (
    "camera.png",
    "coins.png",
    "brick.png",
    "grass.png",
    "gravel.png",
    "moon.png",
    "page.png",
    "text.png",
    "retina.jpg",
    "ihc.png",
    "hubble_deep_field.jpg",
    "motorcycle_right.png",
    "clock_motion.png",
    "cell.png",
    "logo.png",
    "color.png",
    "horse.png",
)


def _jpeg(img: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


Transform = Callable[[Image.Image], bytes]

TRANSFORMS: dict[str, Transform] = {
    "exact": _jpeg,  # byte-identical to the listed file: found by md5 as well as PDQ
    "recompressed": lambda im: _jpeg(im, quality=40),
    "resized": lambda im: _jpeg(im.resize((im.width // 2, im.height // 2), Image.LANCZOS)),
    "brightened": lambda im: _jpeg(ImageEnhance.Brightness(im).enhance(1.3)),
    "blurred": lambda im: _jpeg(im.filter(ImageFilter.GaussianBlur(1.5))),
    "grayscale": lambda im: _jpeg(im.convert("L")),
    "png": _png,
}

DIHEDRAL_TRANSFORMS: dict[str, Transform] = {
    "rotated90": lambda im: _jpeg(im.transpose(Image.Transpose.ROTATE_90)),
    "rotated180": lambda im: _jpeg(im.transpose(Image.Transpose.ROTATE_180)),
    "rotated270": lambda im: _jpeg(im.transpose(Image.Transpose.ROTATE_270)),
    "mirrored": lambda im: _jpeg(im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)),
    "flipped": lambda im: _jpeg(im.transpose(Image.Transpose.FLIP_TOP_BOTTOM)),
    "transposed": lambda im: _jpeg(im.transpose(Image.Transpose.TRANSPOSE)),
}


def bundled_photo(name: str, max_side: int = 512) -> Image.Image:
    """One of scikit-image's bundled photos as an RGB image no larger than ``max_side``."""
    try:
        import skimage
    except ImportError:
        raise SafesetError(
            "the example photos come from scikit-image: pip install 'safeset[examples]'"
        ) from None
    with Image.open(Path(skimage.__file__).parent / "data" / name) as img:
        img = img.convert("RGB")
    img.thumbnail((max_side, max_side), Image.LANCZOS)
    return img


@dataclass
class ExampleRecord:
    key: str
    data: bytes
    ext: str
    caption: str
    hidden: str | None  # "<photo>/<transform>" for planted copies of a known photo, else None


@dataclass
class ExampleSet:
    records: list[ExampleRecord]
    known: dict[str, Image.Image] = field(default_factory=dict)

    @property
    def hidden_keys(self) -> set[str]:
        return {r.key for r in self.records if r.hidden}

    @property
    def distractor_keys(self) -> set[str]:
        return {r.key for r in self.records if not r.hidden}


def _distractor(rng: random.Random, photos: dict[str, Image.Image]) -> Image.Image:
    """A random crop of an unrelated photo: realistic content that must never match."""
    img = photos[rng.choice(DISTRACTOR_SOURCES)]
    w = rng.randint(img.width // 3, img.width)
    h = rng.randint(img.height // 3, img.height)
    x, y = rng.randint(0, img.width - w), rng.randint(0, img.height - h)
    return img.crop((x, y, x + w, y + h))


def build_examples(distractors: int = 40, *, dihedral: bool = False, seed: int = 0) -> ExampleSet:
    rng = random.Random(seed)
    known = {name: bundled_photo(name) for name in KNOWN}
    photos = {name: bundled_photo(name) for name in DISTRACTOR_SOURCES}
    transforms = TRANSFORMS | (DIHEDRAL_TRANSFORMS if dihedral else {})
    records: list[ExampleRecord] = []
    for name, img in known.items():
        for tname, fn in transforms.items():
            ext = "png" if tname == "png" else "jpg"
            records.append(
                ExampleRecord(
                    "", fn(img), ext, f"a photo ({tname})", f"{name.split('.')[0]}/{tname}"
                )
            )
    for _ in range(distractors):
        records.append(ExampleRecord("", _jpeg(_distractor(rng, photos)), "jpg", "a photo", None))
    rng.shuffle(records)
    for n, r in enumerate(records):
        r.key = f"{n:06d}"
    return ExampleSet(records, known)


def write_known_list(examples: ExampleSet, path: Path) -> None:
    """A stand-in hash list in ThreatExchange file-exchange form: PDQ and md5 of the originals.

    PDQ hashes are reference hashes (full decode, Meta's code), as real lists are made.
    """
    lines = ["# stand-in list: benign example photos playing the role of known items"]
    for img in examples.known.values():
        data = _jpeg(img)
        lines.append(f"pdq {image_facts(data, exact_pdq=True).pdq.hex}")
        lines.append(f"md5 {hashlib.md5(data).hexdigest()}")
    path.write_text("\n".join(lines) + "\n")


def write_folder(examples: ExampleSet, root: Path) -> Path:
    for r in examples.records:
        sub = root / r.key[:4]
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"{r.key}.{r.ext}").write_bytes(r.data)
        (sub / f"{r.key}.txt").write_text(r.caption)
    return root


def write_webdataset(examples: ExampleSet, root: Path, per_shard: int = 25) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for n, start in enumerate(range(0, len(examples.records), per_shard)):
        with tarfile.open(root / f"{n:05d}.tar", "w") as tf:
            for r in examples.records[start : start + per_shard]:
                meta = json.dumps({"key": r.key, "url": f"https://example.org/{r.key}.{r.ext}"})
                for name, blob in (
                    (f"{r.key}.{r.ext}", r.data),
                    (f"{r.key}.txt", r.caption.encode()),
                    (f"{r.key}.json", meta.encode()),
                ):
                    info = tarfile.TarInfo(name)
                    info.size = len(blob)
                    tf.addfile(info, io.BytesIO(blob))
    return root


def write_parquet(examples: ExampleSet, path: Path, row_group: int = 25) -> Path:
    table = pa.table(
        {
            "key": [r.key for r in examples.records],
            "jpg": pa.array([r.data for r in examples.records], pa.binary()),
            "caption": [r.caption for r in examples.records],
            "url": [f"https://example.org/{r.key}.{r.ext}" for r in examples.records],
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, row_group_size=row_group)
    return path
