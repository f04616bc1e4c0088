"""Face-swap artefacts: is a face softer than its surroundings in the way a 128 px paste is?

roop, FaceFusion and their kin all run the inswapper model, which renders the new face at
128x128 and warps it back into the photo with a feathered mask. A face pasted at S > 128 px
therefore has (almost) no detail above 64 cycles per face width, while the hair, ears and
background around it keep the photo's own detail, and a seam runs where the mask fades.

Per face (OpenCV's bundled Haar cascade finds them) the score compares, at that face's own
scale, how much of the fine detail survives a round trip through 128 px:

    r(region) = energy of (crop - up(down(crop, 128 px face))) / energy of (crop - blur(crop))

inside the face (``r_in``) and in a ring around it (``r_out``). A natural face and its ring
lose similar shares (r_in ~ r_out, also in an out-of-focus or upscaled photo, where both are
low); a pasted face has already lost it (r_in << r_out). The score is
``1 - r_in / r_out`` clipped to 0..1, reported for every face found, low ones included, with
``reliable: false`` for faces under ``MIN_RELIABLE`` px, where a 128 px paste removes too
little to see. ``DEFAULT_THRESHOLD`` was set on bench/bench_faceswap.py (simulated swaps:
real swaps may differ). Work is done on a crop around each face, never the whole image.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from safeset.provenance.deps import require

SWAP_SIZE = 128  # inswapper's face resolution
MIN_FACE = 64  # smaller detections are not scored (nothing to see, many false detections)
MIN_RELIABLE = 256  # below this the 128 px band limit is too close to the face's own detail
DEFAULT_THRESHOLD = 0.5
# Inside: the central part of the detector's box (eyes, nose, mouth, cheeks, where a swap's
# mask is opaque). Ring: between these multiples of the box, around the mask's edge and beyond.
INNER = 0.6
RING = (1.15, 1.6)


@dataclass(frozen=True)
class FaceScore:
    box: tuple[int, int, int, int]
    score: float
    r_in: float
    r_out: float
    reliable: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "box": list(self.box),
            "score": round(self.score, 4),
            "r_in": round(self.r_in, 4),
            "r_out": round(self.r_out, 4),
            "reliable": self.reliable,
        }


@cache
def _cascade():
    cv2 = require("cv2")
    return cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")


def detect_faces(gray: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Frontal faces as (x, y, w, h); detection runs on a copy at most 1024 px on a side."""
    cv2 = require("cv2")
    scale = min(1.0, 1024 / max(gray.shape))
    small = (
        gray
        if scale == 1.0
        else cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    )
    found = _cascade().detectMultiScale(
        small, scaleFactor=1.1, minNeighbors=5, minSize=(int(MIN_FACE * scale) or 1,) * 2
    )
    return [tuple(round(v / scale) for v in box) for box in found]


def score_faces(rgb: np.ndarray) -> list[FaceScore]:
    cv2 = require("cv2")
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb
    return [score_face(gray, box) for box in detect_faces(gray)]


def score_face(gray: np.ndarray, box: tuple[int, int, int, int]) -> FaceScore:
    x, y, w, h = box
    size = max(w, h)
    cx, cy = x + w / 2, y + h / 2
    half = RING[1] * size / 2
    x0, y0 = max(0, int(cx - half)), max(0, int(cy - half))
    x1, y1 = min(gray.shape[1], int(cx + half) + 1), min(gray.shape[0], int(cy + half) + 1)
    crop = gray[y0:y1, x0:x1].astype(np.float32)
    factor = min(1.0, SWAP_SIZE / size)
    at_swap = _round_trip(crop, factor)
    lost = (crop - at_swap) ** 2  # detail above the 128 px face's band limit
    detail = (at_swap - _round_trip(crop, factor / 2)) ** 2  # the octave below it
    yy, xx = np.mgrid[y0:y1, x0:x1]
    # Chebyshev distance from the box centre in units of half the face size.
    d = np.maximum(np.abs(xx - cx), np.abs(yy - cy)) / (size / 2)
    inner, ring = d <= INNER, (d >= RING[0]) & (d <= RING[1])
    r_in = _share(lost, detail, inner)
    r_out = _share(lost, detail, ring)
    score = 0.0 if r_out <= 0 else float(np.clip(1.0 - r_in / r_out, 0.0, 1.0))
    return FaceScore((x, y, w, h), score, r_in, r_out, size >= MIN_RELIABLE)


def _round_trip(crop: np.ndarray, factor: float) -> np.ndarray:
    cv2 = require("cv2")
    if factor >= 1.0:
        return crop
    small = cv2.resize(crop, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (crop.shape[1], crop.shape[0]), interpolation=cv2.INTER_LINEAR)


def _share(lost: np.ndarray, detail: np.ndarray, where: np.ndarray) -> float:
    if not where.any():
        return 0.0
    total = float(detail[where].sum())
    return float(lost[where].sum()) / total if total > 0 else 0.0
