"""Benchmark the screening signals against NudeNet's own loop, on one core, in one run.

    taskset -c 0 env OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \
        python bench/bench_screen.py --n 600

Inputs are built here from scikit-image's bundled benign photos (seeded random crops, flips and
JPEG qualities, ~512 px long side), so every figure can be reproduced. Four contenders run
interleaved block by block (order rotated each block) so that drift and noisy neighbours on a
shared machine hit them alike:

  nudenet      NudeDetector().detect(path) per image, exactly as NudeNet ships it
  nudenet-1t   the same loop with its ONNX session rebuilt single-threaded like ours, to
               separate the gain from session settings from the gain from the pipeline
  safeset      Image.open + draft_for_detection + ExplicitDetector.detect in batches; draft
               is a no-op at ~512 px, so these are the same detections as NudeNet
  safeset-rect the opt-in rect mode (padding trimmed; detections close, not identical)

Then: detection agreement (all 18 classes), the share of benign images whose explicit_score
reaches each candidate review threshold, the same comparison on large images where JPEG draft
decoding kicks in, and the face + age estimator's speed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

THRESHOLDS = (0.25, 0.5, 0.6, 0.7, 0.8)
# Grey/binary photos are kept single-channel in the JPEG, as datasets have them.
PHOTOS = (
    "astronaut", "brick", "camera", "chelsea", "clock", "coffee", "coins", "colorwheel",
    "grass", "gravel", "horse", "hubble_deep_field", "immunohistochemistry", "moon", "page",
    "retina", "rocket", "text", "cell",
)  # fmt: skip


@dataclass(frozen=True)
class BenignImage:
    path: Path
    source: str  # which bundled photo it was cut from


def bundled_photos() -> dict[str, Image.Image]:
    import skimage.data

    photos: dict[str, Image.Image] = {}
    for name in PHOTOS:
        pixels = getattr(skimage.data, name)()
        if pixels.dtype == bool:
            pixels = pixels.astype(np.uint8) * 255
        image = Image.fromarray(pixels)
        photos[name] = image.convert("RGB") if image.mode not in ("L", "RGB") else image
    return photos


def build_benign(
    folder: Path, count: int, seed: int, long_side: tuple[int, int]
) -> list[BenignImage]:
    """Seeded crops of the bundled photos, rescaled to a random long side, saved as JPEG."""
    rng = np.random.default_rng(seed)
    photos = bundled_photos()
    names = sorted(photos)
    made: list[BenignImage] = []
    for i in range(count):
        name = names[rng.integers(len(names))]
        photo = photos[name]
        width, height = photo.size
        fraction = rng.uniform(0.4, 1.0)
        w, h = max(8, int(width * fraction)), max(8, int(height * fraction))
        x, y = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
        crop = photo.crop((x, y, x + w, y + h))
        scale = rng.integers(*long_side) / max(w, h)
        crop = crop.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.BICUBIC)
        if rng.random() < 0.5:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        path = folder / f"{seed}-{i:05d}.jpg"
        crop.save(path, quality=int(rng.integers(70, 96)))
        made.append(BenignImage(path, name))
    return made


def nudenet_class_max(detections: Sequence[dict]) -> dict[str, float]:
    best: dict[str, float] = {}
    for d in detections:
        best[d["class"]] = max(best.get(d["class"], 0.0), float(d["score"]))
    return best


def our_class_max(detections: Sequence) -> dict[str, float]:
    best: dict[str, float] = {}
    for d in detections:
        best[d.label] = max(best.get(d.label, 0.0), d.score)
    return best


def compare(ref: list[dict[str, float]], ours: list[dict[str, float]]) -> dict[str, float]:
    """Max per-class score difference (a class missing on one side counts as 0 there)."""
    worst, differing, set_mismatch = 0.0, 0, 0
    for a, b in zip(ref, ours, strict=True):
        diffs = [abs(a.get(c, 0.0) - b.get(c, 0.0)) for c in set(a) | set(b)]
        gap = max(diffs, default=0.0)
        worst = max(worst, gap)
        differing += gap > 0
        set_mismatch += {c for c, s in a.items() if s > 0.25} != {
            c for c, s in b.items() if s > 0.25
        }
    return {"max_diff": worst, "images_differing": differing, "class_set_mismatch": set_mismatch}


@dataclass
class Timing:
    cpu: list[float]  # process CPU seconds per block: what one core really spent
    wall: list[float]  # wall seconds per block: inflated when neighbours share the core


def interleaved(
    contenders: dict[str, Callable[[list[BenignImage]], object]],
    images: list[BenignImage],
    block: int,
) -> dict[str, Timing]:
    """CPU and wall seconds per block for each contender, the order rotated every block.

    CPU time of the whole process counts every thread (ORT's spinning pool included), so on a
    single pinned core it is the per-core cost even when other jobs steal wall time.
    """
    names = list(contenders)
    timings = {name: Timing([], []) for name in names}
    for k, start in enumerate(range(0, len(images), block)):
        chunk = images[start : start + block]
        order = names[k % len(names) :] + names[: k % len(names)]
        for name in order:
            cpu0, wall0 = time.process_time(), time.perf_counter()
            contenders[name](chunk)
            timings[name].cpu.append(time.process_time() - cpu0)
            timings[name].wall.append(time.perf_counter() - wall0)
    return timings


def report_speed(
    timings: dict[str, Timing], count: int, baselines: Sequence[str], block: int
) -> None:
    for name, t in timings.items():
        print(
            f"  {name:<16} {count / sum(t.cpu):7.2f} images per CPU-second   "
            f"({count / sum(t.wall):6.2f} images/s wall)"
        )
    for name, t in timings.items():
        for base in baselines:
            if name in baselines:
                continue
            ratios = [b / a for a, b in zip(t.cpu, timings[base].cpu, strict=True)]
            wall = sum(timings[base].wall) / sum(t.wall)
            print(
                f"  speed-up {name} vs {base}: {sum(timings[base].cpu) / sum(t.cpu):.2f}x CPU "
                f"(per {block}-image block median {statistics.median(ratios):.2f}x, "
                f"min {min(ratios):.2f}, max {max(ratios):.2f}); {wall:.2f}x wall"
            )


def threads_outside_affinity() -> list[str]:
    """Linux: this process's threads whose allowed CPUs differ from the process's own."""
    tasks = Path("/proc/self/task")
    if not tasks.is_dir():
        return []
    own = (tasks / str(os.getpid()) / "status").read_text()
    allowed = [line for line in own.splitlines() if line.startswith("Cpus_allowed_list")]
    escaped = []
    for task in tasks.iterdir():
        try:
            status = (task / "status").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        line = next(x for x in status.splitlines() if x.startswith("Cpus_allowed_list"))
        if [line] != allowed:
            escaped.append(f"{task.name}: {line.split(':')[1].strip()}")
    return escaped


def open_all(images: list[BenignImage]) -> list[Image.Image]:
    return [Image.open(i.path) for i in images]


def print_floor(ours, images: list[BenignImage]) -> None:
    """The bare ONNX session on ready-made input: what no pipeline around it can beat."""
    from safeset.signals.explicit import letterbox, to_blob

    squares = [letterbox(image, ours.input_size)[0] for image in open_all(images)]
    for batch in (1, ours.batch_size):
        blobs = [to_blob(squares[k : k + batch]) for k in range(0, len(squares), batch)]
        ours.session.run(None, {ours.input_name: blobs[0]})
        cpu0 = time.process_time()
        for blob in blobs:
            ours.session.run(None, {ours.input_name: blob})
        rate = len(squares) / (time.process_time() - cpu0)
        print(f"  ONNX session alone, batch {batch}: {rate:.2f} images per CPU-second (floor)")


def bench_explicit(args: argparse.Namespace, images: list[BenignImage], large: list) -> None:
    import cv2
    from nudenet import NudeDetector

    from safeset.signals.explicit import (
        ExplicitDetector,
        bundled_model_path,
        draft_for_detection,
        make_session,
    )

    cv2.setNumThreads(args.threads)  # both pipelines resize with OpenCV
    nudenet = NudeDetector()
    nudenet_1t = NudeDetector()
    nudenet_1t.onnx_session = make_session(bundled_model_path(), args.threads)
    ours = ExplicitDetector(threads=args.threads, batch_size=args.batch)
    rect = ExplicitDetector(threads=args.threads, rect=True)

    def run_ours(chunk: list[BenignImage], draft: bool = True) -> list:
        opened = open_all(chunk)
        if draft:
            for image in opened:
                draft_for_detection(image, ours.input_size)
        return ours.detect(opened)

    contenders: dict[str, Callable[[list[BenignImage]], object]] = {
        "nudenet": lambda chunk: [nudenet.detect(str(i.path)) for i in chunk],
        "nudenet-1t": lambda chunk: [nudenet_1t.detect(str(i.path)) for i in chunk],
        "safeset": run_ours,
        "safeset-rect": lambda chunk: rect.detect([Image.open(i.path) for i in chunk]),
    }
    for run in contenders.values():  # warm-up: sessions allocate on first run
        run(images[: args.batch])
    escaped = threads_outside_affinity()
    if escaped:
        print(
            f"  note: {len(escaped)} thread(s) of this process run outside its CPU set "
            f"{sorted(os.sched_getaffinity(0))}: {escaped} (ORT pins its default pool's workers "
            "itself, so 'nudenet' is not confined to one core; compare CPU-seconds)"
        )

    print(f"\n== explicit: {len(images)} benign JPEGs, long side ~512 px, batch {args.batch}")
    timings = interleaved(contenders, images, args.block)
    report_speed(timings, len(images), ("nudenet", "nudenet-1t"), args.block)

    reference = [nudenet_class_max(nudenet.detect(str(i.path))) for i in images]
    mine = [our_class_max(d) for d in ours.detections(open_all(images))]
    agreement = compare(reference, mine)
    print(
        f"  agreement, all 18 classes: max per-class score diff {agreement['max_diff']:.2g}, "
        f"images with any difference {agreement['images_differing']}/{len(images)}, "
        f"class sets (>0.25) differing {agreement['class_set_mismatch']}"
    )
    opt_in = compare(reference, [our_class_max(d) for d in rect.detections(open_all(images))])
    print(
        f"  opt-in rect mode vs NudeNet: max per-class diff {opt_in['max_diff']:.3f}, "
        f"images differing by >0 {opt_in['images_differing']}/{len(images)}, "
        f"class sets (>0.25) differing {opt_in['class_set_mismatch']}"
    )
    print_floor(ours, images[:100])
    detected = Counter(c for r in reference for c in r)
    print(f"  NudeNet classes seen (images with >=1 detection): {dict(detected.most_common())}")

    scores = [r.explicit_score for r in run_ours(images)]
    print(f"  images per source photo: {dict(Counter(i.source for i in images).most_common())}")
    print("  benign images with explicit_score >= t (false-positive rate):")
    for t in THRESHOLDS:
        hits = [i for i, s in zip(images, scores, strict=True) if s >= t]
        sources = Counter(i.source for i in hits).most_common()
        print(
            f"    t={t:.2f}: {len(hits):4d}/{len(images)} = {len(hits) / len(images):6.2%}",
            sources,
        )
    print(f"  max benign explicit_score: {max(scores):.3f}")

    if large:
        print(f"\n== explicit: {len(large)} large benign JPEGs (long side 1024-2048 px)")
        big = {
            "nudenet": contenders["nudenet"],
            "safeset": run_ours,
            "safeset-nodraft": lambda chunk: run_ours(chunk, draft=False),
        }
        report_speed(interleaved(big, large, args.block), len(large), ("nudenet",), args.block)
        reference = [nudenet_class_max(nudenet.detect(str(i.path))) for i in large]
        for draft in (False, True):
            opened = open_all(large)
            if draft:
                for image in opened:
                    draft_for_detection(image, ours.input_size)
            a = compare(reference, [our_class_max(d) for d in ours.detections(opened)])
            print(
                f"  agreement {'with' if draft else 'without'} draft: max per-class diff "
                f"{a['max_diff']:.3f}, images differing {a['images_differing']}/{len(large)}, "
                f"class sets (>0.25) differing {a['class_set_mismatch']}"
            )


def lfw_faces(scale: int) -> tuple[list[Image.Image], list[Image.Image]]:
    """lfw_subset's 25 px faces (first 100) and non-faces (last 100), upscaled and padded."""
    import skimage.data

    side = 25 * scale

    def framed(pixels: np.ndarray) -> Image.Image:
        face = Image.fromarray((pixels * 255).astype(np.uint8)).resize((side, side), Image.BICUBIC)
        canvas = Image.new("L", (2 * side, 2 * side), 128)
        canvas.paste(face, (side // 2, side // 2))
        return canvas.convert("RGB")

    lfw = skimage.data.lfw_subset()
    return [framed(p) for p in lfw[:100]], [framed(p) for p in lfw[100:]]


def timed(work: Callable[[], object]) -> tuple[object, float, float]:
    """Result, CPU seconds and wall seconds of one call."""
    cpu0, wall0 = time.process_time(), time.perf_counter()
    result = work()
    return result, time.process_time() - cpu0, time.perf_counter() - wall0


def bench_faces(args: argparse.Namespace, images: list[BenignImage]) -> None:
    from safeset.signals.faces import FaceAgeEstimator

    estimator = FaceAgeEstimator(threads=args.threads)
    opened = open_all(images)
    for image in opened:
        image.load()  # decode outside the timing: this times the models
    estimator.faces(opened[0])
    found, cpu, wall = timed(lambda: [estimator.faces(image) for image in opened])
    faces = sum(len(f) for f in found)
    per_source = Counter(i.source for i, f in zip(images, found, strict=True) if f)
    print(f"\n== faces: {len(images)} benign JPEGs (decode not timed)")
    print(
        f"  detect + landmarks + age: {len(images) / cpu:.1f} images per CPU-second "
        f"({len(images) / wall:.1f}/s wall); {faces} faces found"
    )
    print(f"  images with >=1 face, by source photo: {dict(per_source.most_common())}")

    lfw, non_faces = lfw_faces(4)
    lfw_found, cpu, _ = timed(lambda: [estimator.faces(image) for image in lfw])
    ages = np.array([f[0].age for f in lfw_found if f])
    false_faces = sum(bool(estimator.faces(image)) for image in non_faces)
    print(
        f"  lfw_subset faces x4 (200 px, padded to 200x200 grey): found {len(ages)}/100, "
        f"{len(lfw) / cpu:.1f} images per CPU-second; non-face crops with a face: {false_faces}/100"
    )
    print(
        "  apparent ages of those adult faces: "
        f"min {ages.min():.1f}, p10 {np.percentile(ages, 10):.1f}, "
        f"median {np.median(ages):.1f}, p90 {np.percentile(ages, 90):.1f}, max {ages.max():.1f}; "
        f"under 18: {int((ages < 18).sum())}/{len(ages)}"
    )

    chips = np.concatenate(
        [estimator.chips(rgb, r) for rgb in map(np.asarray, lfw) if (r := estimator.locate(rgb)[0])]
    )
    estimator.ages(chips[:1])
    for batch in (1, len(chips)):
        _, cpu, _ = timed(
            lambda b=batch: [estimator.ages(chips[k : k + b]) for k in range(0, len(chips), b)]
        )
        print(f"  age network alone, batch {batch}: {len(chips) / cpu:.0f} faces per CPU-second")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=600, help="benign ~512 px images")
    parser.add_argument("--large", type=int, default=60, help="benign 1-2k px images (0: skip)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--block", type=int, default=20, help="images per interleaved block")
    parser.add_argument("--batch", type=int, default=4, help="safeset's ONNX batch size")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cpu", type=int, default=0, help="core to pin to (-1: don't pin)")
    parser.add_argument("--skip-faces", action="store_true")
    args = parser.parse_args()

    if args.cpu >= 0:
        os.sched_setaffinity(0, {args.cpu})
    print(
        f"python {sys.version.split()[0]}; pinned to {sorted(os.sched_getaffinity(0))}; "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}"
    )
    with tempfile.TemporaryDirectory(prefix="safeset-bench-") as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        images = build_benign(folder, args.n, args.seed, (480, 560))
        large = build_benign(folder, args.large, args.seed + 1, (1024, 2048)) if args.large else []
        print(
            f"built {len(images)} + {len(large)} benign JPEGs in {time.perf_counter() - t0:.1f} s"
        )
        bench_explicit(args, images, large)
        if not args.skip_faces:
            bench_faces(args, images)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
