"""Simulated face swaps on benign photos, for the face-swap benchmark and tests.

A stand-in for what inswapper-based tools (roop, FaceFusion) do to a photo, without any
model: the face region is taken down to 128x128 (the swapper's resolution) and back up, its
colours are matched to the original face (swappers colour-correct the donor face; here the
"donor" is the same face with its colours shifted), and it is pasted with a feathered
elliptical mask. Real swaps also change the identity and may add their own blur or
sharpening (face enhancers such as GFPGAN), so they may differ from these.
"""

from __future__ import annotations

import numpy as np

from safeset.provenance.deps import require


def simulate_swap(
    rgb: np.ndarray,
    box: tuple[int, int, int, int],
    *,
    feather: float = 0.06,
    mask_scale: float = 0.9,
    colour_shift: tuple[float, float, float] = (8.0, -5.0, 3.0),
) -> np.ndarray:
    """``rgb`` with the face in ``box`` replaced by a 128 px round trip of itself."""
    cv2 = require("cv2")
    x, y, w, h = box
    side = int(max(w, h) * 1.25)
    cx, cy = x + w // 2, y + h // 2
    x0, y0 = max(0, cx - side // 2), max(0, cy - side // 2)
    x1, y1 = min(rgb.shape[1], x0 + side), min(rgb.shape[0], y0 + side)
    crop = rgb[y0:y1, x0:x1].astype(np.float32)
    small = cv2.resize(crop, (128, 128), interpolation=cv2.INTER_AREA)
    donor = np.clip(small + np.array(colour_shift, np.float32), 0, 255)
    face = cv2.resize(donor, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
    mask = np.zeros(crop.shape[:2], np.float32)
    centre = (cx - x0, cy - y0)
    axes = (max(1, int(w * mask_scale / 2)), max(1, int(h * mask_scale * 1.1 / 2)))
    cv2.ellipse(mask, centre, axes, 0, 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), max(0.5, feather * w))[..., None]
    # Colour match: the donor face's per-channel mean and spread brought to the original's.
    inside = mask[..., 0] > 0.5
    for c in range(3):
        src, ref = face[..., c][inside], crop[..., c][inside]
        if src.size and src.std() > 0:
            face[..., c] = (face[..., c] - src.mean()) * (ref.std() / src.std()) + ref.mean()
    out = rgb.astype(np.float32).copy()
    out[y0:y1, x0:x1] = crop * (1 - mask) + face * mask
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
