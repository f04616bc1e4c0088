"""Stable Diffusion's invisible watermarks (``invisible-watermark``'s dwtDct), decoded with
numpy, PyWavelets and OpenCV alone.

What the reference scripts embed, through ``imwatermark.WatermarkEncoder(...).encode(bgr,
"dwtDct")``:

* SD v1/v2 (CompVis and Stability ``scripts/txt2img.py``): the 17 bytes ``StableDiffusionV1``,
  136 bits;
* SDXL (Stability's generative-models and diffusers' ``StableDiffusionXLWatermarker``): the
  48-bit constant ``0b101100111110110010010000011110111011000110011110``.

The encoder (``imwatermark.maxDct.EmbedMaxDct``, scales ``[0, 36, 36]``) converts BGR to YUV
with OpenCV, takes a one-level Haar DWT of the U channel, and in every 4x4 block of the
approximation band quantises the largest-magnitude coefficient but the first so that
``|c| mod 36`` falls in the lower (bit 0) or upper (bit 1) half; bit ``k`` is repeated in every
block ``n`` with ``n mod L == k``. Decoding averages each bit's votes; an image downscaled
0.5x after marking is decoded too (its pixels are the Haar approximation, halved: see
``approximation``). The package itself is not used here because it imports torch at module
level (tests and bench/ use it to make watermarked images). Some diffusers releases handed
RGB arrays to the BGR encoder, so both channel orders are tried.

A message counts as found when the decoded bits agree with it far beyond chance: the binomial
tail probability of that many agreeing bits in random bits must be below ``MAX_CHANCE``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from safeset.provenance.deps import require

SD_V1_MESSAGE = b"StableDiffusionV1"
SDXL_MESSAGE = 0b101100111110110010010000011110111011000110011110
SCALE = 36.0
BLOCK = 4
MIN_PIXELS = 256 * 256  # the encoder refuses smaller images, so nothing below can carry one
MAX_CHANCE = 1e-6


def _bits_of_bytes(message: bytes) -> np.ndarray:
    return np.unpackbits(np.frombuffer(message, dtype=np.uint8)).astype(bool)


def _bits_of_int(value: int) -> np.ndarray:
    return np.array([c == "1" for c in bin(value)[2:]], dtype=bool)


@dataclass(frozen=True)
class Mark:
    name: str
    bits: np.ndarray


MARKS = (
    Mark("StableDiffusionV1", _bits_of_bytes(SD_V1_MESSAGE)),
    Mark("SDXL", _bits_of_int(SDXL_MESSAGE)),
)


def approximation(bgr: np.ndarray, *, halved: bool = False) -> np.ndarray:
    """The band the encoder marks: the Haar approximation of the U channel.

    ``halved``: the image was downscaled 0.5x (area averaging) after marking. Each of its
    pixels is then the mean of a 2x2 block, and a Haar approximation coefficient is twice that
    mean, so ``2 * U`` of the small image is (up to rounding) the marked band itself.
    """
    cv2 = require("cv2")
    if halved:
        return 2.0 * cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV)[:, :, 1].astype(np.float64)
    pywt = require("pywt")
    rows, cols = bgr.shape[0] // 4 * 4, bgr.shape[1] // 4 * 4
    u = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV)[:rows, :cols, 1]
    approx, _details = pywt.dwt2(u, "haar")
    return approx


def decode_bits(bgr: np.ndarray, length: int, *, halved: bool = False) -> np.ndarray:
    """Each of ``length`` bits' mean vote (0..1), as ``EmbedMaxDct.decode`` averages them."""
    return votes(approximation(bgr, halved=halved), length)


def votes(approx: np.ndarray, length: int) -> np.ndarray:
    br, bc = approx.shape[0] // BLOCK, approx.shape[1] // BLOCK
    blocks = approx[: br * BLOCK, : bc * BLOCK].reshape(br, BLOCK, bc, BLOCK)
    blocks = blocks.transpose(0, 2, 1, 3).reshape(br * bc, BLOCK * BLOCK)
    pos = np.argmax(np.abs(blocks[:, 1:]), axis=1) + 1
    values = np.abs(blocks[np.arange(len(blocks)), pos])
    marked = (values % SCALE) > 0.5 * SCALE
    index = np.arange(len(marked)) % length
    sums = np.bincount(index, weights=marked, minlength=length)
    counts = np.bincount(index, minlength=length)
    return sums / np.maximum(counts, 1)


def chance(agreeing: int, total: int) -> float:
    """P(at least ``agreeing`` of ``total`` random bits agree with a fixed message)."""
    return sum(math.comb(total, k) for k in range(agreeing, total + 1)) / 2**total


def detect_watermark(rgb: np.ndarray) -> dict[str, Any] | None:
    """``{name, bits_agreeing, bit_accuracy, chance, channel_order, scale}`` of the
    best-agreeing mark, or None. Tried: as stored, then as if downscaled 0.5x after marking."""
    pixels = rgb.shape[0] * rgb.shape[1] if rgb.ndim == 3 else 0
    best = None
    for halved in (False, True):
        if pixels * (4 if halved else 1) < MIN_PIXELS:
            continue
        for order, bgr in (("bgr", rgb[:, :, ::-1]), ("rgb", rgb)):
            approx = approximation(np.ascontiguousarray(bgr), halved=halved)
            for mark in MARKS:
                decoded = votes(approx, len(mark.bits)) * 255 > 127
                agreeing = int(np.count_nonzero(decoded == mark.bits))
                p = chance(agreeing, len(mark.bits))
                if best is None or p < best["chance"]:
                    best = {
                        "name": mark.name,
                        "bits_agreeing": f"{agreeing}/{len(mark.bits)}",
                        "bit_accuracy": round(agreeing / len(mark.bits), 3),
                        "chance": p,
                        "channel_order": order,
                        "scale": 0.5 if halved else 1.0,
                    }
        if best is not None and best["chance"] < MAX_CHANCE:
            return best
    return None
