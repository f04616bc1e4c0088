"""Fast PDQ hashing: decode JPEGs at reduced scale and hash a 64x64 luminance buffer in numpy.

PDQ (Meta's perceptual hash) only ever looks at a 64x64 luminance image: the reference converts
RGB to luma, blurs with two passes of Jarosz box filters (a tent) sized to the full image, takes
64x64 samples, keeps a 16x16 block of the 2-D DCT and thresholds it at its median. Hashing a
large photo the naive way (full decode, `pdqhash.compute` on the full RGB array) spends almost
all its time on pixels PDQ averages away.

This module gets (nearly) the same 64x64 buffer far more cheaply:

* JPEGs are decoded with libjpeg's DCT scaling (Pillow `draft`, 1/2, 1/4 or 1/8) straight to
  luminance: the JPEG Y channel uses PDQ's own 0.299/0.587/0.114 weights, so the chroma
  planes are never reconstructed. Only the entropy decoding of the whole file remains; it is
  the floor this pass runs close to.
* A reduced pixel is the mean of a `scale x scale` block of stored pixels (to within
  rounding). Running the reference filter on the small image would use a tent sized to the
  small image, a different filter, landing a median 10-16 bits from the full-size hash. We
  instead apply the full-size reference filter, integrated over each block, with a first-
  moment correction for the tent's slope inside a block (see `_build_bands`): median 0-2 bits.
  The decoded array (`DecodedLuma`) carries the stored size and scale this needs.
* The filter is separable and linear, so the 64x64 buffer is `R @ luma @ C.T` with two sparse
  banded 64 x n operators, cached per (size, scale), applied by gathering only their bands
  (in C, ``_pdq.c``, where it was built: one call instead of six numpy ones; the quality too).
* Non-JPEG images are decoded fully; the same operators with scale 1 are the reference filter.
* Dihedral variants resample with mirrored operators: the hashes of the actually rotated or
  flipped pixels, not of a rotated 64x64 buffer nor of DCT sign symmetries.

Hashes are of the stored pixels: EXIF orientation is deliberately not applied.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image

from safeset.limits import check_decoded_size
from safeset.signals.pdq_reference import PDQResult

try:  # the resampling and quality loops compiled (setup.py builds them with a C compiler)
    from safeset.signals import _pdq as _compiled
except ImportError:  # numpy alone
    _compiled = None
_COMPILED_DTYPES = (np.dtype(np.uint8), np.dtype(np.float32))
_INDEX_IS_INT64 = np.dtype(np.intp) == np.dtype(np.int64)

#: Side of the luminance buffer PDQ hashes.
PDQ_SIZE = 64
#: Side of the kept block of DCT coefficients (frequencies 1..16, the DC term is skipped).
DCT_SIZE = 16
#: The reference refuses images with a side below this: all-zero hash, quality 0.
MIN_HASHABLE_DIM = 5
#: Reference Jarosz box window per pass is ceil(side / 128): two passes give a tent about
#: side / 64 wide, one output pixel's worth.
JAROSZ_WINDOW_DIVISOR = 128
#: Smallest reduced side `decode_luma_for_pdq` asks libjpeg for. Fidelity depends on how many
#: reduced pixels one PDQ output pixel (a 64th of the side) spans: with 2 (a 128 target) the
#: fast hash was a median 2, 99th percentile 16 bits from the full-size one on 512 px
#: squares, with 3 or more (192) a median 0, p99 4-6, no worse than decoding at full size
#: (JPEG Y vs RGB-derived luma alone moves up to ~6 bits at p99). Decoding speed is within
#: a few % between the two: entropy decoding, not the inverse DCT, dominates.
DRAFT_TARGET = 192
#: The fast hash of a JPEG is usually 0-6 bits from the full-decode one, rarely up to ~16
#: (JPEG Y vs luma of clipped RGB, reduced decode): measured on 2,000 varied ~512 px JPEGs
#: (bench/bench_hash_pass.py), median 0, p99 6, max 16, 0.1-0.2% beyond 8 bits. Near a match
#: threshold that can flip a decision, so a matcher confirms a fast hash within
#: `threshold + RECHECK_MARGIN` of a listed hash on the full decode (`exact_pdq`) before
#: dismissing it; away from lists (almost every image) the fast hash stands on its own.
#: The band costs the search next to nothing: the index is searched exactly to the threshold
#: and keeps the band's entries that the threshold's probes meet (~99.9% of them at 10M
#: entries; see PDQIndex.search), instead of searching threshold + 8 exactly (5x slower).
RECHECK_MARGIN = 8
#: Pixels converted to luminance at a time (a stripe of rows): bounds the float temporaries.
STRIPE_PIXELS = 1 << 20
#: ITU-R BT.601 luma weights, as in the PDQ reference (and JPEG's Y channel).
LUMA_WEIGHTS = (0.299, 0.587, 0.114)

#: Order of `pdq_dihedral_from_luma` results: the same order and meaning as the reference's
#: dihedral hashes (and Meta's `bridge-1..8` regression images).
DIHEDRAL_ORDER = (
    "original",
    "rotate90",  # rotated 90 degrees counter-clockwise
    "rotate180",
    "rotate270",  # rotated 90 degrees clockwise
    "flipx",  # mirrored top-to-bottom (about the x axis)
    "flipy",  # mirrored left-to-right (about the y axis)
    "flip_plus1",  # transposed (mirrored about the main diagonal)
    "flip_minus1",  # mirrored about the anti-diagonal
)


def jarosz_window(side: int) -> int:
    """Reference box-filter window for one pass along a side of `side` pixels (rounded up)."""
    return (side + JAROSZ_WINDOW_DIVISOR - 1) // JAROSZ_WINDOW_DIVISOR


@dataclass(frozen=True)
class _Band:
    """Sparse 64 x n resampling operator: out[i] = sum_k weights[i, k] * line[index[i, k]]."""

    index: np.ndarray  # (64, K) indices into the (reduced) line
    weights: np.ndarray  # (64, 1, K) float32, shaped for a batched matmul


_BandKey = tuple[int, int, float]  # (stored side, reduced side, stored pixels per reduced pixel)
_BAND_CACHE: dict[_BandKey, _Band] = {}
_BAND_CACHE_LIMIT = 8192
_ODD = np.tile(2 * np.arange(PDQ_SIZE, dtype=np.float64) + 1, 2)[:, None]  # for 1 or 2 keys
_ARANGE = np.arange(4096, dtype=np.float64)
_NEIGHBOURS = np.array([1.0, -1.0])[None, :, None]


def _bands(keys: list[_BandKey]) -> list[_Band]:
    """Bands for each key, from the cache or built together in one vectorised pass.

    Building costs a few dozen small numpy calls whatever the sizes (a fraction of a JPEG
    decode), so the missing axes of an image are built in one go. Safe to call from threads.
    """
    found = {key: band for key in keys if (band := _BAND_CACHE.get(key)) is not None}
    missing = [key for key in dict.fromkeys(keys) if key not in found]
    if missing:
        built = dict(zip(missing, _build_bands(missing), strict=True))
        if len(_BAND_CACHE) + len(built) > _BAND_CACHE_LIMIT:
            _BAND_CACHE.clear()
        _BAND_CACHE.update(built)
        found.update(built)
    return [found[key] for key in keys]


def _build_bands(keys: list[_BandKey]) -> list[_Band]:
    """Reference 1-D PDQ downsampling of each stored line, expressed on its reduced line.

    Reduced pixel (cell) j holds the mean of stored pixels [j * step, (j + 1) * step) (what
    libjpeg's scaled decode gives, to within rounding). The reference operator (a box pass,
    a second box pass, then the sample at floor((i + 0.5) * side / 64)) needs more than cell
    means: its weights vary inside a cell. Modelling the image inside each cell as its mean
    plus a slope estimated from the neighbouring cells, each output needs per cell the sum
    of its weights (times the mean) and their first moment about the cell centre (times the
    slope). With step 1 the moments vanish and this is the reference operator itself.

    Keys are stacked, one row per (key, output sample), and everything is float64 (exact on
    these integers) to keep the number of numpy calls low.
    """
    table = []
    for side, reduced, step in keys:
        window = jarosz_window(side)
        after = (window + 2) // 2 - 1  # box output k averages [k - before, k + after]
        table.append((side, side - 1, reduced - 1, step, window - 1 - after, after))
    side, last_pixel, last_cell, step, before, after = np.repeat(
        np.array(table, dtype=np.float64), PDQ_SIZE, axis=0
    ).T[:, :, None]
    widest = max(jarosz_window(key[0]) for key in keys)
    odd = _ODD[: len(side)] if len(keys) <= 2 else np.tile(_ODD[:PDQ_SIZE], (len(keys), 1))
    sample = np.floor(odd * side / (2 * PDQ_SIZE))
    # Second box pass: the sample averages first-pass outputs ks = lo2..hi2 ...
    lo2 = np.maximum(sample - before, 0)
    hi2 = np.minimum(sample + after, last_pixel)
    ks = lo2 + _ARANGE[:widest]
    coeff = (ks <= hi2) / (hi2 - lo2 + 1)
    np.minimum(ks, hi2, out=ks)  # padding (zero coefficient) repeats the last output
    # ... and first-pass output k averages stored pixels [lo1, hi1) (continuous coordinates).
    lo1 = np.maximum(ks - before, 0)
    hi1 = np.minimum(ks + after, last_pixel) + 1
    coeff /= hi1 - lo1
    # Cells touched by each sample's support, plus one neighbour each side for the slopes
    # (not at scale 1, where a cell is a pixel and has no slope term).
    pad = step > 1
    first = lo1[:, :1] // step - pad
    touched = np.minimum((hi1[:, -1:] - 1) // step, last_cell) + pad - first
    widths = touched.reshape(len(keys), PDQ_SIZE).max(axis=1).astype(int) + 1
    cells = first + _ARANGE[: int(widths.max())]
    bounds = np.minimum(np.maximum(first + _ARANGE[: cells.shape[1] + 1], 0) * step, side)
    # Weight (and first moment) of stored pixels [0, x) at cell bounds: the weight density is
    # piecewise constant, so both are exact at fractional bounds too.
    lo1, hi1 = lo1[:, :, None], hi1[:, :, None]
    inside = np.minimum(np.maximum(bounds[:, None, :], lo1), hi1)
    both = np.matmul(
        coeff[:, None, :], np.concatenate((inside - lo1, inside * inside - lo1 * lo1), 2)
    )
    mass, moment = both[:, 0, : bounds.shape[1]], both[:, 0, bounds.shape[1] :] / 2
    weight = mass[:, 1:] - mass[:, :-1]
    moment = moment[:, 1:] - moment[:, :-1] - (bounds[:, 1:] + bounds[:, :-1]) / 2 * weight
    # Slope of cell c: difference of the neighbouring cells' means over the distance of their
    # centres (one-sided at the ends of the line). Its moment term moves weight to cell c + 1
    # and takes it from c - 1; at the ends those positions are cells -1 and n, which index
    # (clipped) the end cell itself, exactly as the one-sided difference needs.
    near = np.minimum(np.maximum(cells[:, None, :] + _NEIGHBOURS, 0), last_cell[:, None])
    centres = near * step[:, None] + np.minimum((near + 1) * step[:, None], side[:, None])
    # Centres are doubled here; a zero distance only occurs where the moment is zero too.
    shift = 2 * moment / np.maximum(centres[:, 0] - centres[:, 1], 1.0)
    weight[:, 1:] += shift[:, :-1]
    weight[:, :-1] -= shift[:, 1:]
    index = np.minimum(np.maximum(cells, 0), last_cell).astype(np.intp)
    weights = weight.astype(np.float32)[:, None, :]
    return [  # contiguous: the compiled resample reads them as flat arrays
        _Band(
            index=np.ascontiguousarray(index[n * PDQ_SIZE : (n + 1) * PDQ_SIZE, :width]),
            weights=np.ascontiguousarray(weights[n * PDQ_SIZE : (n + 1) * PDQ_SIZE, :, :width]),
        )
        for n, width in enumerate(widths.tolist())
    ]


def _resample(luma: np.ndarray, rows: _Band, cols: _Band) -> np.ndarray:
    """The 64x64 PDQ buffer `R @ luma @ C.T`, gathering only each operator's band.

    Compiled (``_pdq.c``) where it was built, for uint8 and float32 images. Else each pass
    gathers the K lines an output needs, (64, K, n), and contracts them with a batched
    (1 x K) @ (K x n) matmul; the column pass works on the transpose. The gather comes first so
    that a uint8 image is converted to float only where it is read.
    """
    if _compiled is not None and luma.dtype in _COMPILED_DTYPES and _INDEX_IS_INT64:
        image = np.ascontiguousarray(luma)
        out = np.empty((PDQ_SIZE, PDQ_SIZE), dtype=np.float32)
        height, width = image.shape
        _compiled.resample(
            image, height, width, image.itemsize, rows.index, rows.weights, cols.index,
            cols.weights, out,
        )  # fmt: skip
        return out
    lines = np.take(luma, rows.index, axis=0).astype(np.float32, copy=False)  # uint8 ok
    across = np.matmul(rows.weights, lines)[:, 0, :]
    return np.matmul(cols.weights, np.take(across.T, cols.index, axis=0))[:, 0, :].T


@lru_cache(maxsize=1)
def _dct_matrix() -> np.ndarray:
    """16 x 64 DCT-II rows for frequencies 1..16 (the reference skips the DC term)."""
    i = np.arange(1, DCT_SIZE + 1)[:, None]
    j = np.arange(PDQ_SIZE)[None, :]
    scale = math.sqrt(2.0 / PDQ_SIZE)
    return (scale * np.cos(np.pi / 2 / PDQ_SIZE * i * (2 * j + 1))).astype(np.float32)


def _quality(buffer: np.ndarray) -> int:
    """Reference quality: sum of |neighbour differences| in percent of 255, truncated, / 90.

    The reference truncates (u - v) * 100 / 255 towards zero before taking |.|; float
    negation is exact, so |u - v| * 100 / 255 floored is the same number.
    """
    if _compiled is not None and buffer.dtype == np.float32 and buffer.flags.c_contiguous:
        return _compiled.quality(buffer)
    both = np.stack((buffer, buffer.T))
    step = np.abs(both[:, :-1, :] - both[:, 1:, :])
    step *= 100
    step /= 255
    return min(100, int(step.astype(np.int32).sum()) // 90)


def _hashes(buffers: np.ndarray) -> list[bytes]:
    """PDQ hash bits of a stack of 64x64 float32 buffers (shape (n, 64, 64)).

    Bit k = i * 16 + j is set when DCT coefficient (i, j) exceeds the median (the 128th
    smallest, as the reference's Torben median); the reference prints bit 255 first, so the
    bits are reversed before packing MSB first.
    """
    dct = _dct_matrix()
    flat = np.matmul(np.matmul(dct, buffers), dct.T).reshape(len(buffers), -1)
    median = np.partition(flat, 127, axis=1)[:, 127:128]
    packed = np.packbits(flat[:, ::-1] > median, axis=1)
    return [row.tobytes() for row in packed]


class DecodedLuma(np.ndarray):
    """Luma decoded at reduced scale that remembers the stored image it stands for.

    `decode_luma_for_pdq` returns one; the hash functions then apply the full-size reference
    filter (integrated over the reduced pixels) instead of running PDQ on the small image.
    Only the array returned carries `stored_size` and `scale`: anything derived from it
    (slices, copies, rotations, arithmetic) is an ordinary luma image, hashed as it is.
    """

    stored_size: tuple[int, int] | None  # (height, width) of the stored image
    scale: float  # stored pixels per reduced pixel, along both axes

    def __array_finalize__(self, obj: object) -> None:
        self.stored_size = None
        self.scale = 1.0

    def __reduce__(self):  # keep the attributes through pickling (process pools)
        rebuild, args, state = super().__reduce__()  # type: ignore[misc]
        return rebuild, args, (state, self.stored_size, self.scale)

    def __setstate__(self, state) -> None:  # type: ignore[override]
        array_state, self.stored_size, self.scale = state
        super().__setstate__(array_state)


def _prepare(luma: np.ndarray) -> tuple[np.ndarray, tuple[int, int], float]:
    """Plain 2-D array, the stored (height, width) it stands for, and its scale."""
    stored_size, scale = getattr(luma, "stored_size", None), getattr(luma, "scale", 1.0)
    array = np.asarray(luma)
    if array.ndim != 2 or array.size == 0:
        raise ValueError(f"expected a non-empty 2-D luminance array, got shape {array.shape}")
    if stored_size is None:
        stored_size, scale = (array.shape[0], array.shape[1]), 1.0
    return array, stored_size, scale


def _operators(array: np.ndarray, stored: tuple[int, int], scale: float) -> tuple[_Band, _Band]:
    """Row and column operators taking `array` to the 64x64 PDQ buffer of the stored image."""
    rows, cols = _bands([(stored[0], array.shape[0], scale), (stored[1], array.shape[1], scale)])
    return rows, cols


def _mirrored(band: _Band, length: int) -> _Band:
    """The operator applied to the reversed line: R J, i.e. indices counted from the end."""
    return _Band(index=length - 1 - band.index, weights=band.weights)


_UNHASHABLE = PDQResult(hash=bytes(32), quality=0)


def pdq_from_luma(luma: np.ndarray) -> PDQResult:
    """PDQ hash and quality of a luminance image (uint8 or float, values 0..255, any size).

    A plain array is hashed exactly as the reference hashes those pixels (up to float
    rounding). A `DecodedLuma` from `decode_luma_for_pdq` is hashed as the full-size stored
    image it was decoded from.
    """
    buffer = luma_buffer(luma)
    return _UNHASHABLE if buffer is None else buffer_result(buffer)


def luma_buffer(luma: np.ndarray) -> np.ndarray | None:
    """The 64x64 float32 buffer PDQ hashes for a luminance image (see ``pdq_from_luma``);
    None where the stored image is too small to hash."""
    array, stored, scale = _prepare(luma)
    if min(stored) < MIN_HASHABLE_DIM:
        return None
    if array.shape == (PDQ_SIZE, PDQ_SIZE) and scale == 1:
        return array.astype(np.float32)  # the reference filter is the identity at 64x64
    return _resample(array, *_operators(array, stored, scale))


def buffer_result(buffer: np.ndarray) -> PDQResult:
    """PDQ hash and quality of one 64x64 float32 buffer: in one compiled call where built
    (the DCT summed in another order than numpy's product: a bit at the median may rarely
    differ), else ``_hashes`` and ``_quality``."""
    if _compiled is not None and buffer.dtype == np.float32 and buffer.flags.c_contiguous:
        digest, quality = _compiled.hash(buffer, _dct_matrix())
        return PDQResult(hash=digest, quality=quality)
    return PDQResult(hash=_hashes(buffer[None])[0], quality=_quality(buffer))


def pdq_dihedral_from_luma(luma: np.ndarray) -> list[PDQResult]:
    """PDQ of the 8 rotations/flips of `luma`, in `DIHEDRAL_ORDER` (index 0 = original).

    Each variant is the hash of the actually transformed pixels: the reference samples a
    line asymmetrically (floor((i + 0.5) * side / 64), uneven box windows), so a flipped
    image is not the flipped 64x64 buffer; it is the buffer resampled with the mirrored
    operator. Transposes are exact, so 4 resamples give all 8. (The reference's own dihedral
    hashes come from DCT sign symmetries instead and land 34-42 bits off on fine textures.)
    """
    array, stored, scale = _prepare(luma)
    if min(stored) < MIN_HASHABLE_DIM:
        return [_UNHASHABLE] * len(DIHEDRAL_ORDER)
    rows, cols = _operators(array, stored, scale)
    flip_rows, flip_cols = _mirrored(rows, array.shape[0]), _mirrored(cols, array.shape[1])
    same = _resample(array, rows, cols)
    flipped_x = _resample(array, flip_rows, cols)  # top-to-bottom
    flipped_y = _resample(array, rows, flip_cols)  # left-to-right
    both = _resample(array, flip_rows, flip_cols)
    # rot90 (counter-clockwise) is the transpose of the left-right flip, rot270 of the
    # top-to-bottom one, the anti-transpose that of rot180.
    buffers = [same, flipped_y.T, both, flipped_x.T, flipped_x, flipped_y, same.T, both.T]
    # Quality sums gradients both ways, so a transpose keeps it; flips can move it by a hair.
    q_same, q_x, q_y, q_both = (_quality(b) for b in (same, flipped_x, flipped_y, both))
    qualities = [q_same, q_y, q_both, q_x, q_x, q_y, q_same, q_both]
    hashes = _hashes(np.stack(buffers))
    return [PDQResult(hash=h, quality=q) for h, q in zip(hashes, qualities, strict=True)]


def luma_from_image(img: Image.Image) -> np.ndarray:
    """Luminance of a Pillow image, via `convert("RGB")` as the naive path does.

    Greyscale ("L") is used as is, as uint8: its RGB conversion repeats the value and the
    weights sum to 1. Every other mode (RGBA, LA, P, CMYK, I;16, I, F, 1, ...) goes through
    Pillow's own RGB conversion, so alpha is dropped and high-bit-depth values are clipped
    exactly as `np.asarray(img.convert("RGB"))` would see them; the result is float32.
    """
    check_decoded_size(img.mode, img.size)  # after any draft: what will really be decoded
    if img.mode == "L":
        return np.asarray(img)
    if img.mode == "La":  # premultiplied alpha: Pillow converts it to nothing but "LA"
        img = img.convert("LA")
    img.load()
    # Stripe by stripe, so that only the decoded image and its luminance are ever whole: the
    # same per-pixel arithmetic as converting it all at once, without a float copy of it.
    width, height = img.size
    luma = np.empty((height, width), dtype=np.float32)
    rows = max(1, STRIPE_PIXELS // max(1, width))
    r, g, b = LUMA_WEIGHTS
    for top in range(0, height, rows):
        bottom = min(height, top + rows)
        rgb = np.asarray(img.crop((0, top, width, bottom)).convert("RGB"), dtype=np.float32)
        luma[top:bottom] = rgb[:, :, 0] * r + rgb[:, :, 1] * g + rgb[:, :, 2] * b
    return luma


def decode_luma_for_pdq(img: Image.Image, target: int = DRAFT_TARGET) -> np.ndarray:
    """Decode an opened, not yet loaded image cheaply into the luminance PDQ needs.

    JPEGs are decoded at 1/2, 1/4 or 1/8 scale (the most reduced keeping both sides >= `target`)
    and straight to the Y channel where possible, and returned as a `DecodedLuma` that the
    hash functions treat as the full-size image; pass it to them unmodified. Other formats
    (and JPEGs too small to reduce) are decoded fully into a plain array. EXIF
    orientation is not applied: hashes are of the stored pixels.

    Read `img.size` before calling this: Pillow's `draft` changes it to the reduced size.
    """
    width, height = img.size
    scale = 1.0
    if img.format in ("JPEG", "MPO") and min(width, height) >= MIN_HASHABLE_DIM:
        # Mode "L" makes libjpeg emit only the Y channel of YCbCr/RGB JPEGs (CMYK stays CMYK
        # and is converted below). Pillow picks the largest power of 2 <= 8 keeping >= target.
        drafted = img.draft("L", (target, target))
        if drafted is not None:
            scale = width / drafted[1][2]
    luma = luma_from_image(img)
    if scale == 1:
        return luma
    decoded = luma.view(DecodedLuma)
    decoded.stored_size, decoded.scale = (height, width), scale
    return decoded


def pdq_from_image(img: Image.Image, *, full_decode: bool = False) -> PDQResult:
    """PDQ hash of an opened, not yet loaded image: via the reduced decode by default.

    With `full_decode`, the image is decoded fully to RGB, as the naive path does, and the
    hash is the reference's on those pixels (to within float rounding of `pdqhash`).
    """
    return pdq_from_luma(luma_from_image(img) if full_decode else decode_luma_for_pdq(img))
