"""Reduced-scale JPEG luma through simplejpeg (libjpeg-turbo in its wheel), Pillow the fallback.

The fast PDQ spends most of its time in libjpeg's entropy decoding, whoever calls it. Pillow's
route to it (``Image.open``, ``draft``, ``load``, ``np.asarray``) adds its header parsing and
plugin machinery; simplejpeg goes straight from the bytes to a numpy array, 1.15x faster on
~512 px JPEGs here. It is asked for exactly the scale Pillow's ``draft`` would pick and for the
Y channel only, so the luma is the one ``decode_luma_for_pdq`` returns (pixel-identical where
both wheels bundle the same libjpeg-turbo; tests/test_jpeg_fast.py compares them).

Only plain 8-bit greyscale and YCbCr JPEGs take this path, and only when libjpeg decodes them
without a warning (``strict``). Everything else (no simplejpeg installed, CMYK/YCCK/RGB JPEGs,
12-bit, sides under 5 pixels, truncated or corrupt data, decompression bombs) returns None and
the caller takes the Pillow path, whose errors and tolerances stay the reference.
"""

from __future__ import annotations

import numpy as np

from safeset import limits
from safeset.limits import decoded_bytes
from safeset.signals.pdq_fast import DRAFT_TARGET, MIN_HASHABLE_DIM, DecodedLuma

try:  # the optional `fast` extra; Pillow decodes everything without it
    import simplejpeg
except ImportError:  # pragma: no cover - exercised by the fallback tests via monkeypatch
    simplejpeg = None

_SOI = b"\xff\xd8\xff"
_Y_COLORSPACES = frozenset({"Gray", "YCbCr"})


def draft_scale(width: int, height: int, target: int = DRAFT_TARGET) -> int:
    """The DCT scale (1, 2, 4 or 8) Pillow's ``draft(mode, (target, target))`` picks."""
    fits = min(width // target, height // target)
    return next((s for s in (8, 4, 2) if fits >= s), 1)


def jpeg_header(data: bytes, *, max_pixels: int) -> tuple[int, int] | None:
    """(width, height) of a JPEG this path decodes, from its header alone; else None."""
    if simplejpeg is None or not data.startswith(_SOI):
        return None
    try:
        height, width, colorspace, _ = simplejpeg.decode_jpeg_header(data)
    except ValueError:
        return None
    if (
        colorspace not in _Y_COLORSPACES
        or width * height > max_pixels
        or min(width, height) < MIN_HASHABLE_DIM  # unhashable: Pillow's path says so
    ):
        return None
    return width, height


def decode_jpeg_luma(
    data: bytes,
    target: int = DRAFT_TARGET,
    *,
    max_pixels: int,
    size: tuple[int, int] | None = None,
) -> tuple[int, int, np.ndarray] | None:
    """(width, height, luma) of a JPEG's stored pixels, as ``decode_luma_for_pdq`` gives them.

    The luma is a `DecodedLuma` when reduced (pass it unmodified to the hash functions), a
    plain uint8 array otherwise. None where this path does not apply (see the module notes).
    ``size``: what ``jpeg_header`` said of ``data`` already, where the caller asked it.
    """
    size = size or jpeg_header(data, max_pixels=max_pixels)
    if size is None:
        return None
    width, height = size
    scale = draft_scale(width, height, target)
    shape = (-(-height // scale), -(-width // scale))
    if decoded_bytes("L", shape[1], shape[0]) > limits.MAX_DECODED_BYTES:
        return None  # Pillow's path refuses it with the reason ("too large: ...")
    try:
        luma = simplejpeg.decode_jpeg(
            data, colorspace="GRAY", min_height=shape[0], min_width=shape[1], strict=True
        )
    except (ValueError, MemoryError):
        return None
    if luma.shape != (*shape, 1):  # not the scale asked for: leave it to Pillow
        return None
    luma = luma.reshape(shape)
    if scale == 1:
        return width, height, luma
    decoded = luma.view(DecodedLuma)
    decoded.stored_size, decoded.scale = (height, width), float(scale)
    return width, height, decoded
