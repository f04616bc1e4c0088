"""Stable Diffusion watermark detection after re-encoding, and the per-image cost of each check.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python bench/bench_provenance.py

Watermarked images are made by invisible-watermark's encoder (as SD v1/v2's txt2img script and
SDXL's watermarker call it) from scikit-image photos of 256x256 pixels' worth or more (the
encoder's minimum; crops and full size); each is decoded as saved (PNG), after JPEG quality
90 and 75 (Pillow's default 4:2:0 chroma subsampling, and 4:4:4), and after a 0.5x resize.
The same images without a watermark give the false-positive count. Our numpy decoder and
invisible-watermark's own ``WatermarkDecoder`` run side by side on the same pixels: the bits
they decode are compared and CPU time per image is reported as a ratio. Finally the CPU time
of ``inspect_bytes`` per image: metadata only, + watermark, + face-swap score.
"""

from __future__ import annotations

import io
import time

import cv2
import numpy as np
from PIL import Image

from safeset.provenance import InspectOptions, inspect_bytes
from safeset.provenance.watermark import MARKS, decode_bits, detect_watermark

SDXL_BITS = [int(b) for b in MARKS[1].bits]
NAMES = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "immunohistochemistry",
    "hubble_deep_field",
    "camera",
    "moon",
    "page",
    "brick",
    "grass",
    "gravel",
    "retina",
    "coins",
)


def sources() -> list[np.ndarray]:
    import skimage.data

    out = []
    for name in NAMES:
        img = getattr(skimage.data, name)()
        img = np.stack([img] * 3, -1) if img.ndim == 2 else img[..., :3]
        out.append(np.ascontiguousarray(img))
        h, w = img.shape[:2]
        if h >= 384 and w >= 384:  # and a 256x320 crop, for variety of sizes and content
            out.append(np.ascontiguousarray(img[h // 4 : h // 4 + 256, w // 4 : w // 4 + 320]))
    return [s for s in out if s.shape[0] * s.shape[1] >= 256 * 256]


def watermark(rgb: np.ndarray, sdxl: bool) -> np.ndarray:
    from imwatermark import WatermarkEncoder

    enc = WatermarkEncoder()
    if sdxl:
        enc.set_watermark("bits", SDXL_BITS)
    else:
        enc.set_watermark("bytes", b"StableDiffusionV1")
    return np.ascontiguousarray(
        enc.encode(np.ascontiguousarray(rgb[:, :, ::-1]), "dwtDct")[:, :, ::-1]
    )


def jpeg(rgb: np.ndarray, quality: int, subsampling: int = 2) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality, subsampling=subsampling)
    return np.asarray(Image.open(buf).convert("RGB"))


TRANSFORMS = {
    "as saved (PNG)": lambda a: a,
    "JPEG q90 (4:2:0)": lambda a: jpeg(a, 90),
    "JPEG q90 (4:4:4)": lambda a: jpeg(a, 90, 0),
    "JPEG q75 (4:2:0)": lambda a: jpeg(a, 75),
    "JPEG q75 (4:4:4)": lambda a: jpeg(a, 75, 0),
    "resize 0.5x": lambda a: cv2.resize(a, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA),
}


def main() -> None:
    from imwatermark import WatermarkDecoder

    images = sources()
    print(f"{len(images)} images, sizes {sorted({a.shape[:2] for a in images})[:3]}...")
    print(f"{'transform':20} {'SD v1 found':>12} {'SDXL found':>11} {'false pos.':>10}")
    for label, transform in TRANSFORMS.items():
        hits = {False: 0, True: 0}
        for sdxl in (False, True):
            for img in images:
                found = detect_watermark(transform(watermark(img, sdxl)))
                hits[sdxl] += bool(
                    found and found["name"] == ("SDXL" if sdxl else "StableDiffusionV1")
                )
        false_pos = sum(detect_watermark(transform(img)) is not None for img in images)
        n = len(images)
        print(f"{label:20} {hits[False]:>5}/{n:<6} {hits[True]:>4}/{n:<6} {false_pos:>4}/{n}")

    # Side by side with invisible-watermark's decoder: same bits, CPU time per image.
    ours_t = theirs_t = 0.0
    same = 0
    marked = [watermark(img, False) for img in images]
    for img in marked:
        bgr = np.ascontiguousarray(img[:, :, ::-1])
        t = time.process_time()
        ours = decode_bits(bgr, 136) * 255 > 127
        ours_t += time.process_time() - t
        t = time.process_time()
        theirs = WatermarkDecoder("bits", 136).decode(bgr, "dwtDct")
        theirs_t += time.process_time() - t
        same += bool(np.array_equal(ours, np.asarray(theirs, dtype=bool)))
    n = len(marked)
    print(f"decoded bits identical to invisible-watermark's decoder: {same}/{n}")
    print(
        f"CPU per image, one 136-bit decode: ours {ours_t / n * 1e3:.1f} ms, "
        f"invisible-watermark {theirs_t / n * 1e3:.1f} ms (ratio {theirs_t / ours_t:.1f}x)"
    )

    # Per-image cost of inspect, cheap checks first.
    files = [encode(img) for img in marked] + [encode(img, "JPEG") for img in images]
    for label, options in (
        ("metadata + C2PA only", InspectOptions(watermark=False, face_swap=False)),
        ("+ watermark", InspectOptions(face_swap=False)),
        ("+ watermark + face swap", InspectOptions()),
    ):
        t = time.process_time()
        for data in files:
            inspect_bytes(data, options)
        per_image = (time.process_time() - t) / len(files) * 1e3
        print(f"inspect CPU per image, {label:24}: {per_image:7.2f} ms")


def encode(rgb: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, fmt)
    return buf.getvalue()


if __name__ == "__main__":
    main()
