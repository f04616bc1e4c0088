"""Face-swap score on benign photos with faces, untouched vs simulated 128 px swaps.

    .venv/bin/pip install -e '.[bench]' && .venv/bin/pip install --no-deps insightface
    .venv/bin/python bench/bench_faceswap.py

Photos: scikit-image's ``astronaut``, matplotlib's ``grace_hopper``, the group photo and
portrait that insightface's wheel ships under ``insightface/data/images`` (found on disk, the
package is not imported: it would pull onnx). scikit-image's ``lfw_subset`` is left out: its
25 px crops hold the face alone, with no surroundings for the score to compare against. Each
face (cropped with 3x its box around it) is scaled so that it is about 256, 320, 400 and 512 px
(Lanczos), flipped or not, and saved as PNG or JPEG q95/q85; every detected face of the
untouched image is a negative, and the same image with one face swapped (``simulate_swap``,
feather and mask size varied, then the same JPEG step) gives that face as a positive.

Upscaling a photo cannot add detail it never had: a face that is natively under 128 px has no
detail a 128 px swap could remove, so the figures are also given for faces whose native size
is at least 192 px (grace_hopper's), the case the score is meant for. Simulated swaps are a
stand-in: real swaps may differ. The obvious alternative, a plain sharpness ratio (variance of
the Laplacian inside the face over the ring), is scored side by side.
"""

from __future__ import annotations

import importlib.util
import io
import itertools
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from safeset.provenance.faceswap import (
    DEFAULT_THRESHOLD,
    INNER,
    RING,
    detect_faces,
    score_face,
)
from safeset.provenance.simulate import simulate_swap

SIZES = (256, 320, 400, 512)
JPEG = (None, 95, 85)
SWAPS = ((0.03, 0.85), (0.06, 0.9), (0.1, 1.0))


def photos() -> dict[str, np.ndarray]:
    import matplotlib.cbook
    import skimage.data

    out = {"astronaut": skimage.data.astronaut()}
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        out["grace_hopper"] = np.asarray(Image.open(f).convert("RGB"))
    spec = importlib.util.find_spec("insightface")
    if spec and spec.origin:
        folder = Path(spec.origin).parent / "data" / "images"
        for name in ("t1.jpg", "Tom_Hanks_54745.png"):
            if (folder / name).exists():
                out[f"insightface:{name}"] = np.asarray(Image.open(folder / name).convert("RGB"))
    else:
        print("insightface not installed: its photos are left out (pip install --no-deps ...)")
    return out


def jpeg(rgb: np.ndarray, quality: int | None) -> np.ndarray:
    if quality is None:
        return rgb
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"))


def laplacian_ratio(gray: np.ndarray, box) -> float:
    """Baseline: 1 - var(Laplacian) inside / var(Laplacian) in the ring."""
    x, y, w, h = box
    lap = cv2.Laplacian(gray.astype(np.float32), cv2.CV_32F)
    yy, xx = np.mgrid[0 : gray.shape[0], 0 : gray.shape[1]]
    d = np.maximum(np.abs(xx - x - w / 2), np.abs(yy - y - h / 2)) / (max(w, h) / 2)
    inner, ring = lap[d <= INNER], lap[(d >= RING[0]) & (d <= RING[1])]
    return float(1 - inner.var() / ring.var()) if ring.size and ring.var() > 0 else 0.0


def iou(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    return inter / (aw * ah + bw * bh - inter)


def auc(pos: list[float], neg: list[float]) -> float:
    """ROC AUC as the Mann-Whitney probability that a positive outscores a negative."""
    if not pos or not neg:
        return float("nan")
    p, n = np.asarray(pos)[:, None], np.asarray(neg)[None, :]
    return float((p > n).mean() + 0.5 * (p == n).mean())


def main() -> None:
    rows = []  # (label, native_size, size, score, baseline, cpu_seconds)
    for photo in photos().values():
        for crop, ref in face_crops(photo):
            for size, flip, quality in itertools.product(SIZES, (False, True), JPEG):
                k = size / ref
                img = cv2.resize(crop, None, fx=k, fy=k, interpolation=cv2.INTER_LANCZOS4)
                img = img[:, ::-1].copy() if flip else img
                clean = jpeg(img, quality)
                gray = cv2.cvtColor(clean, cv2.COLOR_RGB2GRAY)
                faces = detect_faces(gray)
                rows += score_all(img, gray, faces, ref, size, quality)
    report(rows)


def face_crops(photo: np.ndarray):
    """Each face of a photo with the surroundings a swap's ring needs (3x its box), and its
    native size; the bench scales these crops, not whole group photos, to stay fast."""
    for x, y, w, h in detect_faces(cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)):
        side = 3 * max(w, h)
        cx, cy = x + w // 2, y + h // 2
        x0, y0 = max(0, cx - side // 2), max(0, cy - side // 2)
        yield photo[y0 : y0 + side, x0 : x0 + side], max(w, h)


def score_all(img, gray, faces, ref, size, quality):
    """Rows for each untouched face and for each simulated swap of it."""
    rows = []
    for box in faces:
        started = time.process_time()
        s = score_face(gray, box)
        cost = time.process_time() - started
        rows.append(
            (0, ref * max(box[2:]) / size, max(box[2:]), s.score, laplacian_ratio(gray, box), cost)
        )
    for box, (feather, mask) in itertools.product(faces, SWAPS):
        swapped = jpeg(simulate_swap(img, box, feather=feather, mask_scale=mask), quality)
        sgray = cv2.cvtColor(swapped, cv2.COLOR_RGB2GRAY)
        found = [f for f in detect_faces(sgray) if iou(f, box) > 0.3]
        if not found:
            continue
        s = score_face(sgray, found[0])
        rows.append(
            (
                1,
                ref * max(found[0][2:]) / size,
                max(found[0][2:]),
                s.score,
                laplacian_ratio(sgray, found[0]),
                0.0,
            )
        )
    return rows


def report(rows) -> None:
    print(f"default threshold {DEFAULT_THRESHOLD}")
    print(
        f"{'faces':42} {'pos':>5} {'neg':>5} {'AUC':>6} {'FPR@thr':>8} {'TPR@thr':>8} "
        f"{'AUC lapl.':>9}"
    )
    groups = {
        "all faces >= 256 px": lambda r: r[2] >= 256,
        "faces >= 256 px, native >= 192 px": lambda r: r[2] >= 256 and r[1] >= 192,
        "faces >= 256 px, native < 128 px": lambda r: r[2] >= 256 and r[1] < 128,
    }
    for label, keep in groups.items():
        sel = [r for r in rows if keep(r)]
        pos = [r[3] for r in sel if r[0]]
        neg = [r[3] for r in sel if not r[0]]
        fpr = np.mean([s >= DEFAULT_THRESHOLD for s in neg]) if neg else float("nan")
        tpr = np.mean([s >= DEFAULT_THRESHOLD for s in pos]) if pos else float("nan")
        base = auc([r[4] for r in sel if r[0]], [r[4] for r in sel if not r[0]])
        print(
            f"{label:42} {len(pos):5d} {len(neg):5d} {auc(pos, neg):6.3f} {fpr:8.3f} "
            f"{tpr:8.3f} {base:9.3f}"
        )
    costs = [r[5] for r in rows if not r[0]]
    print(f"score_face CPU time per face: median {np.median(costs) * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
