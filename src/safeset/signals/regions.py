"""Hashes of rectangular regions of an image, from what the scan has already decoded.

Two signals need hashes of part of an image rather than all of it, and decoding again would
double a scan's cost:

- the unpadded PDQ variant (the picture inside a border or letterbox, ``signals.unpad``) is a
  real PDQ, matched against lists: its region is cut out of the reduced-scale luminance
  ``ImageView.pdq_luma`` holds and hashed as the stored pixels it stands for (a crop of a
  ``DecodedLuma`` keeps its scale, its stored size is the region's in stored pixels, so
  ``pdq_fast`` applies the full-size reference filter to it): ``pdq_of_regions``;
- the descriptors expansion compares with each other (``signals.near``) need only be alike
  for alike regions, and there are many: they are cut from the 64 x 64 buffer PDQ has just
  hashed, for a few microseconds each: ``buffer_hashes``.

Boxes are fractions of the stored image, ``(left, top, right, bottom)`` in 0..1: the same box
means the same part of the picture whatever size a copy is stored at.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from safeset.signals.pdq_fast import (
    MIN_HASHABLE_DIM,
    PDQ_SIZE,
    DecodedLuma,
    _dct_matrix,
    _hashes,
    _operators,
    _prepare,
    _quality,
    _resample,
    buffer_result,
    luma_buffer,
    luma_from_image,
    pdq_from_luma,
)
from safeset.signals.pdq_reference import PDQResult, pdq_reference

Box = tuple[float, float, float, float]  # left, top, right, bottom, as fractions of the sides
FULL: Box = (0.0, 0.0, 1.0, 1.0)


def crop_luma(luma: np.ndarray, box: Box) -> np.ndarray | None:
    """The part of ``luma`` inside ``box``, as a luma ``pdq_fast`` hashes as the stored pixels
    of that region; None where the region is too small to hash."""
    array, (height, width), scale = _prepare(luma)
    rows, cols = array.shape
    r0, r1 = _span(box[1], box[3], rows)
    c0, c1 = _span(box[0], box[2], cols)
    if r1 - r0 < MIN_HASHABLE_DIM or c1 - c0 < MIN_HASHABLE_DIM:
        return None
    part = array[r0:r1, c0:c1]
    if scale == 1:
        return part
    region = part.view(DecodedLuma)
    # Reduced cell j of the crop holds stored pixels [(r0 + j) * scale, ...): relative to the
    # crop's origin, the layout the band operators expect. The last cell may be partial.
    stored_h = min(round(r1 * scale), height) - round(r0 * scale)
    stored_w = min(round(c1 * scale), width) - round(c0 * scale)
    region.stored_size, region.scale = (max(stored_h, 1), max(stored_w, 1)), scale
    return region


def _span(lo: float, hi: float, n: int) -> tuple[int, int]:
    a = min(max(round(lo * n), 0), n)
    b = min(max(round(hi * n), a), n)
    return a, b


def pdq_of_regions(luma: np.ndarray, boxes: Sequence[Box]) -> list[PDQResult | None]:
    """PDQ of each region of ``luma`` (None where a region is too small), hashed together:
    one batched DCT for all of them."""
    buffers, where = [], []
    for n, box in enumerate(boxes):
        region = crop_luma(luma, box)
        if region is None:
            continue
        array, stored, scale = _prepare(region)
        if min(stored) < MIN_HASHABLE_DIM:
            continue
        buffers.append(_resample(array, *_operators(array, stored, scale)))
        where.append(n)
    out: list[PDQResult | None] = [None] * len(boxes)
    if buffers:
        for n, digest, buffer in zip(where, _hashes(np.stack(buffers)), buffers, strict=True):
            out[n] = PDQResult(digest, _quality(buffer))
    return out


def pdq_of_region_exact(image, box: Box) -> PDQResult | None:
    """Reference PDQ (full decode, Meta's code) of one region of a Pillow image."""
    width, height = image.size
    c0, c1 = _span(box[0], box[2], width)
    r0, r1 = _span(box[1], box[3], height)
    if r1 - r0 < MIN_HASHABLE_DIM or c1 - c0 < MIN_HASHABLE_DIM:
        return None
    return pdq_reference(image.crop((c0, r0, c1, r1)))


def full_luma(image) -> np.ndarray:
    """Luminance of a fully decoded Pillow image, as the reference path sees it."""
    return luma_from_image(image)


def pdq_keeping_buffer(image, luma: np.ndarray) -> PDQResult:
    """``pdq_fast.pdq_from_luma``, keeping the 64 x 64 buffer it hashes on ``image`` (an
    ``ImageView``) as ``pdq_buffer``: the near-copy descriptors are cut from it for a few
    microseconds instead of resampling the image again."""
    buffer = luma_buffer(luma)
    if buffer is None:
        return pdq_from_luma(luma)  # unhashable
    image.pdq_buffer = buffer
    return buffer_result(buffer)


def pdq_buffer(image) -> np.ndarray | None:
    """The 64 x 64 buffer PDQ hashed for ``image``: kept, else computed (dihedral or
    reference scans hash by other paths)."""
    buffer = getattr(image, "pdq_buffer", None)
    return luma_buffer(image.pdq_luma()) if buffer is None else buffer


@lru_cache(maxsize=256)
def _interpolation(lo: float, hi: float) -> np.ndarray:
    """PDQ's 16 x 64 DCT rows applied after a linear interpolation taking buffer span
    [lo, hi) (fractions) to 64 samples: one small matrix per side of a region."""
    centres = (lo + (np.arange(PDQ_SIZE) + 0.5) / PDQ_SIZE * (hi - lo)) * PDQ_SIZE - 0.5
    centres = np.clip(centres, 0, PDQ_SIZE - 1)
    left = np.floor(centres).astype(int)
    right = np.minimum(left + 1, PDQ_SIZE - 1)
    frac = centres - left
    m = np.zeros((PDQ_SIZE, PDQ_SIZE), dtype=np.float32)
    m[np.arange(PDQ_SIZE), left] += 1 - frac
    m[np.arange(PDQ_SIZE), right] += frac
    return _dct_matrix() @ m


@lru_cache(maxsize=64)
def _box_operators(boxes: tuple[Box, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The stacked row operators and transposed column operators of a set of boxes."""
    rows = np.stack([_interpolation(round(b[1], 6), round(b[3], 6)) for b in boxes])
    cols = np.stack([_interpolation(round(b[0], 6), round(b[2], 6)) for b in boxes])
    return rows, np.ascontiguousarray(cols.transpose(0, 2, 1))


def buffer_hashes(buffers: np.ndarray, boxes: Sequence[Box]) -> list[bytes]:
    """PDQ-style hashes (the same DCT block, median and bit order as ``pdq_fast``) of regions
    of PDQ buffers, each region resampled to 64 x 64 by linear interpolation (folded into the
    DCT): for a stack of buffers (n, 64, 64), each buffer's hashes of all ``boxes`` joined
    (32 bytes a box), in one batched product for the whole stack.

    A region of the 64 x 64 buffer is a blurred view of the image's region, so these are
    descriptors to compare with each other (a hit's with a candidate's, both made this way),
    not with a list's PDQ; the full box gives the PDQ hash itself."""
    if not len(buffers):
        return []
    rows, cols = _box_operators(tuple(boxes))
    flat = np.matmul(np.matmul(rows[None], buffers[:, None]), cols[None])
    flat = flat.reshape(len(buffers) * len(boxes), -1)
    median = np.partition(flat, 127, axis=1)[:, 127:128]
    bits = np.packbits(flat[:, ::-1] > median, axis=1).reshape(len(buffers), -1)
    return [row.tobytes() for row in bits]
