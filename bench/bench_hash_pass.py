"""Benchmark the fast PDQ hash pass against the naive one, side by side, on one core.

Builds its own inputs in memory from the photos bundled with scikit-image (seeded: varied
crops, aspect ratios, sizes, JPEG qualities and chroma subsampling, light grain on some), then:

1. speed: images/s of the naive pass (Pillow full decode, `pdqhash.compute` on the full RGB
   array, md5 + sha256) and of the fast pass (`decode_luma_for_pdq` + `pdq_from_luma`, same
   exact hashes), plus the floor the fast pass cannot beat (open, reduced-scale Y decode, md5,
   sha256). The passes take turns over chunks of 25 images, so drifting load on the machine
   hits all alike; CPU time is shown next to wall time, as other processes may share the core;
2. fidelity: Hamming distance between the fast and the naive PDQ of every image;
3. transformed copies: naive PDQ of ~15 "known" photos as the hash list; transformed copies of
   them and unrelated distractors are hashed by both paths and matched at distance <= 31.

Run pinned to one core, e.g.:

    taskset -c 0 python bench/bench_hash_pass.py            # the targets (takes minutes)
    taskset -c 0 python bench/bench_hash_pass.py --quick    # a smoke run in seconds
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pdqhash
import skimage.data
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

from safeset.matching.pdq_index import PDQIndex
from safeset.signals import pdq_fast
from safeset.signals.image import image_facts
from safeset.signals.pdq_fast import (
    DRAFT_TARGET,
    RECHECK_MARGIN,
    decode_luma_for_pdq,
    pdq_from_image,
    pdq_from_luma,
)

try:
    from safeset.signals.pdq_reference import hamming_distance
except ImportError:  # a checkout from before the library refactor (--baseline-src)
    from safeset.signals.pdq import hamming_distance

try:
    import simplejpeg

    from safeset.signals.jpeg_fast import draft_scale
except ImportError:  # the `fast` extra, or a checkout from before it (--baseline-src)
    simplejpeg = None

MATCH_THRESHOLD = 31
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")
#: Bundled photos used as sources; "cat" is chelsea again and motorcycle_right is the stereo
#: twin of motorcycle_left, so neither is used.
PHOTOS = (
    "astronaut", "brick", "camera", "cell", "chelsea", "clock", "coffee", "coins",
    "colorwheel", "grass", "gravel", "hubble_deep_field", "immunohistochemistry", "moon",
    "motorcycle_left", "page", "retina", "rocket", "text",
)  # fmt: skip
#: Stand-ins for the hash list's "known" items.
KNOWN = (
    "astronaut", "camera", "cell", "chelsea", "clock", "coffee", "coins", "hubble_deep_field",
    "immunohistochemistry", "moon", "motorcycle_left", "page", "retina", "rocket", "text",
)  # fmt: skip
#: Sources of distractors: photos and textures that are not in the hash list.
DISTRACTOR_SOURCES = ("brick", "grass", "gravel", "colorwheel", "logo", "microaneurysms")


def load_photo(name: str) -> Image.Image:
    """A bundled photo as an 8-bit RGB or L Pillow image."""
    if name == "motorcycle_left":
        array = skimage.data.stereo_motorcycle()[0]
    else:
        array = getattr(skimage.data, name)()
    image = Image.fromarray(np.ascontiguousarray(array))
    return image.convert("RGB") if image.mode not in ("RGB", "L") else image


def encode(image: Image.Image, fmt: str = "JPEG", **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


# ---------------------------------------------------------------------------------------------
# inputs


def varied_jpeg(
    rng: np.random.Generator, photos: dict[str, Image.Image], size: int, exact: bool = False
) -> bytes:
    """A seeded variation of a random photo: crop, aspect, long side ~size, grain, quality.

    With `exact`, every image is exactly size x size (a square crop resized, as datasets
    prepared with a centre crop store them) instead of varied aspect and +-10% size.
    """
    photo = photos[PHOTOS[rng.integers(len(PHOTOS))]]
    width, height = photo.size
    crop_w = int(width * rng.uniform(0.4, 1.0))
    crop_h = int(height * rng.uniform(0.4, 1.0))
    left = int(rng.integers(0, width - crop_w + 1))
    top = int(rng.integers(0, height - crop_h + 1))
    if exact:
        crop_w = crop_h = min(crop_w, crop_h)
    image = photo.crop((left, top, left + crop_w, top + crop_h))
    aspect = float(np.clip(crop_w / crop_h, 0.5, 2.0))
    long_side = int(size * rng.uniform(0.9, 1.1))
    if aspect >= 1:
        target = (long_side, max(8, round(long_side / aspect)))
    else:
        target = (max(8, round(long_side * aspect)), long_side)
    if exact:
        target = (size, size)
    image = image.resize(target, Image.Resampling.LANCZOS)
    if rng.random() < 0.5:  # grain: upscaled crops are otherwise unrealistically smooth
        noisy = np.asarray(image, dtype=np.float32)
        noisy = noisy + rng.normal(0, rng.uniform(1, 4), noisy.shape)
        image = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), image.mode)
    quality = int(rng.integers(50, 96))
    subsampling = int(rng.choice([0, 2]))  # 4:4:4 or 4:2:0
    return encode(image, quality=quality, subsampling=subsampling)


def banner(image: Image.Image) -> Image.Image:
    out = image.convert("RGB")
    draw = ImageDraw.Draw(out)
    height = max(1, out.height // 10)
    draw.rectangle((0, 0, out.width, height), fill=(200, 30, 40))
    for x in range(4, out.width - 8, 24):  # text-like white marks
        draw.rectangle((x, height // 3, x + 12, 2 * height // 3), fill=(255, 255, 255))
    return out


def letterbox(image: Image.Image) -> Image.Image:
    canvas = Image.new(image.mode, (int(image.width * 1.6), image.height))
    canvas.paste(image, ((canvas.width - image.width) // 2, 0))
    return canvas


TRANSFORMS: dict[str, Callable[[Image.Image], bytes]] = {
    "identical": lambda im: encode(im, quality=90),
    "recompress q=40": lambda im: encode(im, quality=40),
    "resize 50%": lambda im: encode(
        im.resize((im.width // 2, im.height // 2), Image.Resampling.LANCZOS), quality=85
    ),
    "brightness +30%": lambda im: encode(ImageEnhance.Brightness(im).enhance(1.3), quality=85),
    "gaussian blur r=2": lambda im: encode(im.filter(ImageFilter.GaussianBlur(2)), quality=85),
    "grayscale": lambda im: encode(im.convert("L"), quality=85),
    "banner top 10%": lambda im: encode(banner(im), quality=85),
    "letterbox 1.6x wide": lambda im: encode(letterbox(im), quality=85),
    "re-encode PNG": lambda im: encode(im, "PNG"),
}


def known_originals(photos: dict[str, Image.Image]) -> dict[str, Image.Image]:
    """The known items: each known photo, long side 512 (as a dataset would store it)."""
    known = {}
    for name in KNOWN:
        image = photos[name]
        scale = 512 / max(image.size)
        size = (round(image.width * scale), round(image.height * scale))
        known[name] = image.resize(size, Image.Resampling.LANCZOS)
    return known


def distractors(rng: np.random.Generator, count: int) -> list[bytes]:
    """Unrelated images: crops of photos outside the list, some as 2x2 mosaics of crops."""
    sources = [load_photo(name) for name in DISTRACTOR_SOURCES]
    pool = sources + [load_photo(name) for name in KNOWN]

    def crop(image: Image.Image, size: tuple[int, int]) -> Image.Image:
        w = int(image.width * rng.uniform(0.3, 0.9))
        h = int(image.height * rng.uniform(0.3, 0.9))
        x = int(rng.integers(0, image.width - w + 1))
        y = int(rng.integers(0, image.height - h + 1))
        return image.crop((x, y, x + w, y + h)).convert("RGB").resize(size)

    out = []
    for n in range(count):
        side = int(rng.integers(256, 640))
        if n % 2 == 0:  # a crop of a photo that is not in the list
            image = crop(sources[rng.integers(len(sources))], (side, side))
        else:  # a new image made of 4 quarter-size crops (of any photo, listed or not)
            image = Image.new("RGB", (side, side))
            half = side // 2
            for qx in (0, half):
                for qy in (0, half):
                    image.paste(crop(pool[rng.integers(len(pool))], (half, half)), (qx, qy))
        out.append(encode(image, quality=int(rng.integers(60, 95))))
    return out


# ---------------------------------------------------------------------------------------------
# the two passes


@dataclass(frozen=True)
class Row:
    md5: str
    sha256: str
    size: tuple[int, int]
    pdq: bytes
    quality: int


def naive_pass(data: bytes) -> Row:
    md5 = hashlib.md5(data).hexdigest()
    sha256 = hashlib.sha256(data).hexdigest()
    image = Image.open(io.BytesIO(data))
    size = image.size
    bits, quality = pdqhash.compute(np.asarray(image.convert("RGB")))
    return Row(md5, sha256, size, np.packbits(bits.astype(np.uint8)).tobytes(), int(quality))


def fast_pass(data: bytes, target: int = DRAFT_TARGET) -> Row:
    """safeset's pass: md5 + sha256 + `image_facts` (simplejpeg where installed, else Pillow)."""
    md5 = hashlib.md5(data).hexdigest()
    sha256 = hashlib.sha256(data).hexdigest()
    if target == DRAFT_TARGET:
        facts = image_facts(data)
        return Row(md5, sha256, (facts.width, facts.height), facts.pdq.hash, facts.pdq.quality)
    image = Image.open(io.BytesIO(data))  # --target: research on the reduced-decode size
    size = image.size
    result = pdq_from_luma(decode_luma_for_pdq(image, target))
    return Row(md5, sha256, size, result.hash, result.quality)


def decode_floor(data: bytes, target: int = DRAFT_TARGET) -> tuple[str, str, np.ndarray]:
    """Exact hashes and Pillow's reduced-scale Y decode (the floor as it was first measured)."""
    md5 = hashlib.md5(data).hexdigest()
    sha256 = hashlib.sha256(data).hexdigest()
    image = Image.open(io.BytesIO(data))
    image.draft("L", (target, target))
    return md5, sha256, np.asarray(image)


def fastest_decode(data: bytes, target: int = DRAFT_TARGET) -> np.ndarray:
    """The fastest reduced-scale Y decode available: simplejpeg if installed, else Pillow."""
    if simplejpeg is None:
        image = Image.open(io.BytesIO(data))
        image.draft("L", (target, target))
        return np.asarray(image)
    height, width, _, _ = simplejpeg.decode_jpeg_header(data)
    scale = draft_scale(width, height, target)
    return simplejpeg.decode_jpeg(
        data, colorspace="GRAY", min_height=-(-height // scale), min_width=-(-width // scale)
    )


def limit_pass(data: bytes, target: int = DRAFT_TARGET) -> tuple[str, str, object]:
    """What no PDQ pass can beat: exact hashes, the fastest reduced-scale decode, and the PDQ
    core (DCT, median, quality) on a 64x64 image, with no resampling at all."""
    md5 = hashlib.md5(data).hexdigest()
    sha256 = hashlib.sha256(data).hexdigest()
    luma = fastest_decode(data, target)
    core = np.ascontiguousarray(luma.reshape(luma.shape[0], luma.shape[1])[:64, :64])
    return md5, sha256, pdq_from_luma(core)


CHUNK = 25


def numpy_alone(fn: Callable[..., object], *args: object) -> object:
    """`fn(*args)` with the fast PDQ's compiled loops turned off: what an install without a C
    compiler runs."""
    compiled, pdq_fast._compiled = pdq_fast._compiled, None
    try:
        return fn(*args)
    finally:
        pdq_fast._compiled = compiled


def timed_passes(
    datas: list[bytes], target: int
) -> tuple[dict[str, float], dict[str, float], list[Row], list[Row]]:
    """Wall and CPU seconds per pass, `CHUNK` images at a time, rotating which pass goes first.

    Chunks keep each pass's working set warm, as in a real scan; rotating spreads any drift
    in machine load over all passes alike.
    """
    passes: dict[str, Callable[[bytes], object]] = {
        "naive": naive_pass,
        "fast": lambda data: fast_pass(data, target),
        "decode floor": lambda data: decode_floor(data, target),
        "limit": lambda data: limit_pass(data, target),
    }
    if getattr(pdq_fast, "_compiled", None) is not None:
        passes["fast, numpy"] = lambda data: numpy_alone(fast_pass, data, target)
    names = list(passes)
    wall = dict.fromkeys(names, 0.0)
    cpu = dict.fromkeys(names, 0.0)
    results: dict[str, list] = {name: [] for name in names}
    for data in datas[:10]:  # warm-up: imports, caches of numpy and Pillow
        for fn in passes.values():
            fn(data)
    for n, start in enumerate(range(0, len(datas), CHUNK)):
        chunk = datas[start : start + CHUNK]
        for name in names[n % len(names) :] + names[: n % len(names)]:
            fn = passes[name]
            w0, c0 = time.perf_counter(), time.process_time()
            results[name].extend([fn(data) for data in chunk])
            wall[name] += time.perf_counter() - w0
            cpu[name] += time.process_time() - c0
    if "fast, numpy" in results:
        differ = sum(a != b for a, b in zip(results["fast"], results["fast, numpy"], strict=True))
        print(f"\ncompiled and numpy loops: {differ} of {len(datas)} images hashed differently")
    return wall, cpu, results["naive"], results["fast"]


def percentile(values: list[int], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def speed_and_fidelity(label: str, datas: list[bytes], target: int) -> dict[str, float]:
    wall, cpu, naive, fast = timed_passes(datas, target)
    for a, b in zip(naive, fast, strict=True):  # the exact hashes must not change
        assert (a.md5, a.sha256, a.size) == (b.md5, b.sha256, b.size)
    distances = [hamming_distance(a.pdq, b.pdq) for a, b in zip(naive, fast, strict=True)]
    good = [d for d, a in zip(distances, naive, strict=True) if a.quality >= 50]
    dq = [abs(a.quality - b.quality) for a, b in zip(naive, fast, strict=True)]
    count = len(datas)
    print(f"\n== {label}: {count} JPEGs, {sum(map(len, datas)) / count / 1024:.0f} KiB mean ==")
    print(f"{'pass':<14}{'img/s wall':>12}{'img/s cpu':>12}{'ms/img cpu':>12}")
    for name in wall:
        print(
            f"{name:<14}{count / wall[name]:>12.1f}{count / cpu[name]:>12.1f}"
            f"{1000 * cpu[name] / count:>12.3f}"
        )
    ratio_wall = wall["naive"] / wall["fast"]
    ratio_cpu = cpu["naive"] / cpu["fast"]
    print(f"speed-up fast vs naive: {ratio_wall:.1f}x wall, {ratio_cpu:.1f}x cpu")
    print(f"fast vs decode floor:   {cpu['fast'] / cpu['decode floor']:.2f}x the floor's cpu time")
    if "fast, numpy" in cpu:
        print(
            f"compiled resample + quality vs numpy alone: "
            f"{cpu['fast, numpy'] / cpu['fast']:.2f}x faster"
        )
    limit_share = cpu["limit"] / cpu["fast"]
    print(
        f"fast vs limit (fastest decode + md5 + sha256 + PDQ core on 64x64): "
        f"{limit_share:.2f} of the limit's speed (target >= 0.90: "
        f"{'met' if limit_share >= 0.9 else 'missed'})"
    )
    print(
        f"PDQ distance fast vs naive: median {percentile(distances, 50):.1f}, "
        f"p99 {percentile(distances, 99):.1f}, max {max(distances)}, "
        f"mean {np.mean(distances):.2f}"
    )
    print(
        f"  on the {len(good)} with naive quality >= 50: median {percentile(good, 50):.1f}, "
        f"p99 {percentile(good, 99):.1f}, max {max(good, default=0)}"
    )
    beyond = sum(d > RECHECK_MARGIN for d in distances)
    print(
        f"  {beyond} of {count} ({100 * beyond / count:.2f}%) "
        f"beyond RECHECK_MARGIN = {RECHECK_MARGIN}"
    )
    print(f"quality |fast - naive|: median {percentile(dq, 50):.0f}, max {max(dq)}")
    return {"ratio_wall": ratio_wall, "ratio_cpu": ratio_cpu, "limit_share": limit_share}


def nearest(pdq: bytes, listed: dict[str, bytes]) -> tuple[str, int]:
    """The listed item closest to `pdq`, and its distance."""
    return min(((name, hamming_distance(pdq, h)) for name, h in listed.items()), key=lambda x: x[1])


class ListIndex:
    """The listed hashes hidden among random ones in a `PDQIndex`, searched as a scan does.

    A scan searches exact to the threshold and keeps the re-check band beyond it where the
    threshold's probes meet it (`search(q, 31 + RECHECK_MARGIN, exact_radius=31)`); with a
    real-size list that is multi-index probing, not the brute force a 15-entry list would get.
    """

    def __init__(self, listed: dict[str, bytes], filler: int, seed: int = 5) -> None:
        names = list(listed)
        rng = np.random.default_rng(seed)
        hashes = rng.integers(0, 256, size=(len(names) + filler, 32), dtype=np.uint8)
        for i, name in enumerate(names):
            hashes[i] = np.frombuffer(listed[name], dtype=np.uint8)
        self.entry = {name: i for i, name in enumerate(names)}
        self.index = PDQIndex.build(hashes)

    def nearest(self, pdq: bytes, names: list[str], exact_only: bool = False) -> int:
        """Distance to the closest of `names` that the scan's search returns (256: none)."""
        query = np.frombuffer(pdq, dtype=np.uint8)[None, :]
        radius = MATCH_THRESHOLD if exact_only else MATCH_THRESHOLD + RECHECK_MARGIN
        _, ids, dists = self.index.search(query, radius, exact_radius=MATCH_THRESHOLD)
        wanted = {self.entry[name] for name in names}
        return min((int(d) for i, d in zip(ids, dists, strict=True) if i in wanted), default=256)


def fast_match(
    data: bytes, index: ListIndex, names: list[str], target: int
) -> tuple[int, int, bool]:
    """(fast distance, distance after re-check, whether a full decode was needed).

    The re-check `pdq_from_image(..., full_decode=True)` runs only when the scan's search
    returns the listed entry at a fast distance in MATCH_THRESHOLD + 1 .. + RECHECK_MARGIN.
    """
    fast = index.nearest(fast_pass(data, target).pdq, names)
    if MATCH_THRESHOLD < fast <= MATCH_THRESHOLD + RECHECK_MARGIN:
        full = pdq_from_image(Image.open(io.BytesIO(data)), full_decode=True)
        return fast, min(fast, index.nearest(full.hash, names, exact_only=True)), True
    return fast, fast, False


def transformed_copies(
    rng: np.random.Generator,
    photos: dict[str, Image.Image],
    n_distract: int,
    target: int,
    list_size: int,
) -> None:
    known = known_originals(photos)
    listed = {name: naive_pass(encode(image, quality=90)).pdq for name, image in known.items()}
    index = ListIndex(listed, max(list_size - len(listed), 0))
    print(
        f"\n(fast path: the list hidden among {len(index.index):,} entries, searched as scans do)"
    )
    print(f"\n== transformed copies: {len(known)} known photos, list = their naive PDQ ==")
    print(f"found = distance <= {MATCH_THRESHOLD} to the original's listed hash; "
          f"fast+recheck = fast, confirming fast distances {MATCH_THRESHOLD + 1}.."
          f"{MATCH_THRESHOLD + RECHECK_MARGIN} on the full decode")  # fmt: skip
    print(f"{'transform':<22}{'naive':>8}{'fast':>8}{'fast+recheck':>14}{'rechecked':>11}"
          f"{'max |d_fast-d_naive|':>22}  (where both <= 39)")  # fmt: skip
    missed = {"fast": 0, "fast+recheck": 0}
    for label, transform in TRANSFORMS.items():
        found = {"naive": 0, "fast": 0, "fast+recheck": 0}
        rechecked, gaps = 0, []
        for name, image in known.items():
            data = transform(image)
            d_naive = hamming_distance(naive_pass(data).pdq, listed[name])
            d_fast, d_checked, was_rechecked = fast_match(data, index, [name], target)
            hits = {
                "naive": d_naive <= MATCH_THRESHOLD,
                "fast": d_fast <= MATCH_THRESHOLD,
                "fast+recheck": d_checked <= MATCH_THRESHOLD,
            }
            for key, hit in hits.items():
                found[key] += hit
            for key in missed:
                missed[key] += hits["naive"] and not hits[key]
            rechecked += was_rechecked
            if d_fast < 256 and d_naive <= MATCH_THRESHOLD + RECHECK_MARGIN:  # both in reach
                gaps.append(abs(d_fast - d_naive))
        n, widest = len(known), max(gaps, default=0)
        print(f"{label:<22}{found['naive']:>5}/{n:<2}{found['fast']:>5}/{n:<2}"
              f"{found['fast+recheck']:>11}/{n:<2}{rechecked:>11}{widest:>22}")  # fmt: skip
    others = distractors(rng, n_distract)
    flagged = {"naive": 0, "fast": 0, "fast+recheck": 0}
    closest = {"naive": 256, "fast": 256}
    rechecked = 0
    for data in others:
        d_naive = nearest(naive_pass(data).pdq, listed)[1]
        d_fast, d_checked, was_rechecked = fast_match(data, index, list(listed), target)
        flagged["naive"] += d_naive <= MATCH_THRESHOLD
        flagged["fast"] += d_fast <= MATCH_THRESHOLD
        flagged["fast+recheck"] += d_checked <= MATCH_THRESHOLD
        closest = {"naive": min(closest["naive"], d_naive), "fast": min(closest["fast"], d_fast)}
        rechecked += was_rechecked
    beyond = f"> {MATCH_THRESHOLD + RECHECK_MARGIN}"
    print("distractors flagged: " + ", ".join(f"{k} {v}/{len(others)}" for k, v in flagged.items())
          + f"; nearest distance to the list: naive {closest['naive']}, fast "
          f"{closest['fast'] if closest['fast'] < 256 else beyond}; "
          f"rechecked {rechecked}")  # fmt: skip
    print(f"copies the naive pass finds and the fast pass misses: {missed['fast']} "
          f"(with the re-check: {missed['fast+recheck']})")  # fmt: skip


def worker(path: str, rounds: int) -> None:
    """--worker: CPU seconds of md5 + sha256 + `image_facts` over pickled images: the first
    round (each new image size builds its resampling operators) and the best of all (warm);
    and, taking turns with it chunk by chunk, the limit pass where this checkout has one.

    Runs under whichever safeset PYTHONPATH names, so two checkouts are timed alike, and with
    nothing else between the images (as in a scan, unlike the four-pass rotation above).
    """
    with open(path, "rb") as f:
        datas = pickle.load(f)

    def facts_pass(data: bytes) -> None:
        hashlib.md5(data).hexdigest()
        hashlib.sha256(data).hexdigest()
        image_facts(data)

    passes = {"pass": facts_pass}
    if simplejpeg is not None:
        passes["limit"] = limit_pass
    for data in datas[:10]:
        for fn in passes.values():
            fn(data)
    times: dict[str, list[float]] = {name: [] for name in passes}
    for _ in range(rounds):
        spent = dict.fromkeys(passes, 0.0)
        for n, start in enumerate(range(0, len(datas), CHUNK)):
            names = list(passes)[n % len(passes) :] + list(passes)[: n % len(passes)]
            for name in names:
                started = time.process_time()
                for data in datas[start : start + CHUNK]:
                    passes[name](data)
                spent[name] += time.process_time() - started
        for name in passes:
            times[name].append(spent[name])
    result = {"first": times["pass"][0], "warm": min(times["pass"]), "images": len(datas)}
    if "limit" in times:
        result["limit"] = min(times["limit"])
    print(json.dumps(result))


def versus_baseline(datas: list[bytes], baseline_src: str, repeats: int = 3) -> None:
    """This checkout's `image_facts` pass vs another checkout's, in alternating subprocesses."""
    here = str(Path(__file__).resolve().parents[1] / "src")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "images.pickle"
        path.write_bytes(pickle.dumps(datas))
        cpu: dict[str, list[dict]] = {"this checkout": [], "baseline": []}
        for _ in range(repeats):
            for label, src in (("this checkout", here), ("baseline", baseline_src)):
                out = subprocess.run(
                    [sys.executable, __file__, "--worker", str(path)],
                    env={**os.environ, "PYTHONPATH": src},
                    capture_output=True,
                    text=True,
                    check=True,
                )
                cpu[label].append(json.loads(out.stdout.splitlines()[-1]))
    count = len(datas)
    print(f"\n== md5 + sha256 + image_facts, this checkout vs {baseline_src} ({count} images) ==")
    for key, what in (("first", "first pass (cold operator cache)"), ("warm", "warm pass")):
        ours = min(r[key] for r in cpu["this checkout"])
        base = min(r[key] for r in cpu["baseline"])
        print(f"{what}: this checkout {1000 * ours / count:.3f} ms/img cpu, baseline "
              f"{1000 * base / count:.3f}: {base / ours:.2f}x (target >= 1.2x)")  # fmt: skip
    limits = [r["limit"] for r in cpu["this checkout"] if "limit" in r]
    if limits:
        ours, limit = min(r["warm"] for r in cpu["this checkout"]), min(limits)
        print(f"this checkout's warm pass vs the limit beside it ({1000 * limit / count:.3f} "
              f"ms/img): {limit / ours:.2f} of its speed (target >= 0.90)")  # fmt: skip


def single_threaded() -> None:
    """Re-run this script with one-thread BLAS/OpenMP pools unless that is already so.

    Thread pools are sized when numpy is imported, so the variables must be set before that.
    """
    if any(os.environ.get(var) != "1" for var in THREAD_VARS):
        env = {**os.environ, **dict.fromkeys(THREAD_VARS, "1")}
        os.execve(sys.executable, [sys.executable, *sys.argv], env)


def main() -> None:
    single_threaded()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=2000, help="number of ~512px JPEGs")
    parser.add_argument("--small-size", type=int, default=512)
    parser.add_argument("--large", type=int, default=200, help="number of ~2048px JPEGs")
    parser.add_argument("--large-size", type=int, default=2048)
    parser.add_argument("--distractors", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--exact", action="store_true", help="exactly size x size images instead of varied ones"
    )
    parser.add_argument(
        "--target", type=int, default=DRAFT_TARGET, help="reduced-decode target side (fast pass)"
    )
    parser.add_argument("--skip-copies", action="store_true", help="no transformed-copies part")
    parser.add_argument(
        "--list-size", type=int, default=1_000_000, help="list size for the copies part"
    )
    parser.add_argument("--quick", action="store_true", help="100 small, 10 large, 40 distractors")
    parser.add_argument("--baseline-src", default=None, help="src folder of the code to compare")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, rounds=2)
        return
    if args.quick:
        args.small, args.large, args.distractors = 100, 10, 40
    warnings.simplefilter("ignore", Image.DecompressionBombWarning)
    rng = np.random.default_rng(args.seed)
    photos = {name: load_photo(name) for name in PHOTOS}
    print(f"pid {os.getpid()}, cpu affinity {sorted(os.sched_getaffinity(0))}, "
          f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, seed {args.seed}, "
          f"draft target {args.target}")  # fmt: skip
    for label, count, size in (
        (f"~{args.small_size}px", args.small, args.small_size),
        (f"~{args.large_size}px", args.large, args.large_size),
    ):
        if count:
            datas = [varied_jpeg(rng, photos, size, args.exact) for _ in range(count)]
            speed_and_fidelity(
                label + (" (exact squares)" if args.exact else ""), datas, args.target
            )
            if args.baseline_src:
                versus_baseline(datas, args.baseline_src)
    if not args.skip_copies:
        transformed_copies(rng, photos, args.distractors, args.target, args.list_size)


if __name__ == "__main__":
    main()
