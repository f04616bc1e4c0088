"""The unpadded PDQ variant: the hash of the picture inside a border or letterbox.

img2dataset's default resize (``resize_mode=border``) scales the longer side to ``image_size``
and pads the shorter one with white to a square; letterboxed copies carry black (or any uniform
colour) bars. Padding moves PDQ 40-130 bits from the original's, far past any threshold, while
the picture inside is the original, resampled. So beside the stored pixels (variant 0) and
their rotations and flips (1..7), the scan hashes the content box as variant 8 wherever one is
found:

- exactly, where the sample's metadata records the original size (img2dataset's
  ``original_width`` / ``original_height``): a stored image whose aspect differs from the
  original's was scaled to fit and padded around the centre, so the box is where the scaled
  original lies; it is used only if the strips around it are indeed uniform (``center_crop``
  gives the same geometry and has no padding: nothing is undone there, the recorded hash of
  the original file finds those);
- otherwise by detecting uniform borders: rows and columns at each edge within ``TOLERANCE``
  of the edge's colour, of any colour, trimmed where they take at least ``MIN_TRIM`` of a side.

No box, no variant: most images cost one cheap scan of their edges and nothing more.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from safeset.signals.regions import Box, pdq_of_region_exact, pdq_of_regions

#: Variant number of the unpadded hash (0 = as stored, 1..7 = the dihedral variants).
VARIANT_UNPADDED = 8
#: Luma levels a border pixel may differ from its edge's colour (JPEG ringing, noise).
TOLERANCE = 14.0
#: A side's border counts only from this fraction of the side: thinner trims barely move PDQ.
MIN_TRIM = 0.015
#: What must remain of each side: a box smaller than this is a flat image, not a border.
MIN_CONTENT = 0.25
#: Aspect ratios closer than this are the same: no padding came from resizing.
SAME_ASPECT = 0.01
#: Largest side an original size may claim (NaN, infinity and nonsense are ignored).
MAX_SIDE = 1 << 20
#: img2dataset's names for the original size in a sample's json or Parquet row.
ORIGINAL_SIZE_FIELDS = (("original_width", "original_height"),)


def original_size(meta: Mapping[str, Any]) -> tuple[int, int] | None:
    """(width, height) of the original file as the sample's metadata records it, else None."""
    for w_name, h_name in ORIGINAL_SIZE_FIELDS:
        w, h = meta.get(w_name), meta.get(h_name)
        # Hostile metadata may hold anything: only finite sizes a real image could have.
        if all(
            isinstance(v, int | float) and not isinstance(v, bool) and 1 <= v <= MAX_SIDE
            for v in (w, h)
        ):
            return int(w), int(h)
    return None


def content_box(
    luma: np.ndarray, stored: tuple[int, int], original: tuple[int, int] | None = None
) -> Box | None:
    """Where the picture lies inside its padding, as fractions of the stored image; None
    where there is no padding to undo. ``luma`` may be at reduced scale; ``stored`` and
    ``original`` are (width, height)."""
    a = np.asarray(luma)
    if a.ndim != 2 or min(a.shape) < 8:
        return None
    if original is not None:
        box = _box_from_sizes(stored, original)
        if box is not None and _pads_uniform(a, box):
            return box
    return _detected_box(a)


def _box_from_sizes(stored: tuple[int, int], original: tuple[int, int]) -> Box | None:
    (w, h), (w0, h0) = stored, original
    if abs(w / h - w0 / h0) <= SAME_ASPECT * (w0 / h0):
        return None
    scale = min(w / w0, h / h0)
    cw, ch = min(w0 * scale, w), min(h0 * scale, h)
    left, top = (w - cw) // 2 / w, (h - ch) // 2 / h
    return (left, top, left + cw / w, top + ch / h)


def _pads_uniform(a: np.ndarray, box: Box) -> bool:
    rows, cols = a.shape
    r0, r1 = int(box[1] * rows), int(np.ceil(box[3] * rows))
    c0, c1 = int(box[0] * cols), int(np.ceil(box[2] * cols))
    # Leave out the cell at the seam: at reduced scale it mixes padding and picture.
    strips = [a[: max(r0 - 1, 0)], a[r1 + 1 :], a[:, : max(c0 - 1, 0)], a[:, c1 + 1 :]]
    strips = [s for s in strips if s.size]
    return bool(strips) and all(float(s.max()) - float(s.min()) <= 2 * TOLERANCE for s in strips)


def _detected_box(a: np.ndarray) -> Box | None:
    rows, cols = a.shape
    if not _some_edge_uniform(a):  # most images: four ranges, taken together
        return None
    top = _border_depth(a, rows)
    bottom = _border_depth(a[::-1], rows)
    left = _border_depth(a.T, cols)
    right = _border_depth(a.T[::-1], cols)
    if not (top or bottom or left or right):
        return None
    if rows - top - bottom < MIN_CONTENT * rows or cols - left - right < MIN_CONTENT * cols:
        return None
    return (left / cols, top / rows, (cols - right) / cols, (rows - bottom) / rows)


def _some_edge_uniform(a: np.ndarray) -> bool:
    """Whether the first or last row or column lies within TOLERANCE of one colour (where
    ``_border_depth`` would look further in)."""
    rows, cols = a.shape
    edges = np.concatenate((a[0], a[-1], a[:, 0], a[:, -1]))
    starts = np.array([0, cols, 2 * cols, 2 * cols + rows])
    spread = np.maximum.reduceat(edges, starts) - np.minimum.reduceat(edges, starts)
    return bool((spread <= TOLERANCE).any())


def _border_depth(a: np.ndarray, side: int) -> int:
    """How many leading rows of ``a`` are within TOLERANCE of the first row's colour.

    Most images have no uniform edge: that costs a min and a max of one row per side, and
    only a uniform edge leads to looking further in."""
    low, high = float(a[0].min()), float(a[0].max())
    if high - low > TOLERANCE:
        return 0
    colour = (low + high) / 2
    limit = int(side * (1 - MIN_CONTENT) / 2) + 1
    block = a[:limit]
    outside = (block.max(axis=1) > colour + TOLERANCE) | (block.min(axis=1) < colour - TOLERANCE)
    inside = np.flatnonzero(outside)
    depth = int(inside[0]) if inside.size else limit
    return depth if depth >= MIN_TRIM * side else 0


def unpadded_pdq(image, *, exact: bool):
    """PDQ of the picture inside ``image``'s padding (an ``ImageView``), or None."""
    original = getattr(image, "original_size", None)
    if exact:
        from safeset.signals.regions import full_luma

        pixels = image.pixels()
        box = content_box(full_luma(pixels), image.size, original)
        return None if box is None else pdq_of_region_exact(pixels, box)
    luma = image.pdq_luma()
    box = content_box(luma, image.size, original)
    return None if box is None else pdq_of_regions(luma, [box])[0]
