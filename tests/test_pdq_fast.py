"""The fast PDQ path against pdqhash (Meta's C++ reference, wrapped) and Meta's expected hashes.

Inputs are benign photos bundled with scikit-image; Meta's conformance images are used from
../shared/conformance/pdq/ when that folder is present.
"""

from __future__ import annotations

import csv
import io
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pdqhash
import pytest
from PIL import Image

from safeset.signals.pdq_fast import (
    DIHEDRAL_ORDER,
    DecodedLuma,
    decode_luma_for_pdq,
    luma_from_image,
    pdq_dihedral_from_luma,
    pdq_from_image,
    pdq_from_luma,
)
from safeset.signals.pdq_reference import PDQResult, hamming_distance

# Every test here runs with the compiled loops and with numpy alone (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("compiled_loops")

skimage_data = pytest.importorskip("skimage.data")

CONFORMANCE = Path(__file__).resolve().parents[2] / "shared" / "conformance" / "pdq"


def photo(name: str) -> np.ndarray:
    """A bundled photo as an RGB uint8 array."""
    array = (
        skimage_data.stereo_motorcycle()[0]
        if name == "motorcycle"
        else getattr(skimage_data, name)()
    )
    return np.asarray(Image.fromarray(array).convert("RGB"))


def naive(image: Image.Image) -> PDQResult:
    """The reference path: full decode, RGB, pdqhash on the full array."""
    bits, quality = pdqhash.compute(np.ascontiguousarray(np.asarray(image.convert("RGB"))))
    return PDQResult(hash=np.packbits(bits.astype(np.uint8)).tobytes(), quality=int(quality))


def jpeg(array: np.ndarray, quality: int = 90, **options: object) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, "JPEG", quality=quality, **options)
    return out.getvalue()


def resized(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(Image.fromarray(array).resize(size, Image.Resampling.LANCZOS))


# --- the reference algorithm itself ----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "size"),
    [("astronaut", (300, 451)), ("coffee", (600, 400)), ("camera", (77, 1000)), ("coins", (5, 9))],
)
def test_full_size_luma_matches_pdqhash(name: str, size: tuple[int, int]) -> None:
    """At scale 1 the numpy filter is the reference filter: same hash up to float rounding."""
    image = Image.fromarray(resized(photo(name), size))
    fast = pdq_from_luma(luma_from_image(image))
    reference = naive(image)
    assert hamming_distance(fast.hash, reference.hash) <= 2
    assert fast.quality == reference.quality


def test_uint8_and_float_luma_agree() -> None:
    luma = np.asarray(Image.fromarray(photo("chelsea")).convert("L"))
    assert pdq_from_luma(luma) == pdq_from_luma(luma.astype(np.float32))


@pytest.mark.parametrize("shape", [(0, 10), (10,), (4, 4, 3)])
def test_rejects_non_luma_arrays(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="2-D"):
        pdq_from_luma(np.zeros(shape, dtype=np.uint8))


# --- the reduced decode ---------------------------------------------------------------------

FIDELITY_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "camera", "hubble_deep_field",
                   "retina", "motorcycle", "immunohistochemistry", "gravel")  # fmt: skip


def fidelity_set() -> list[bytes]:
    """Seeded JPEGs of bundled photos at sizes where the decode is reduced 2x, 4x and 8x."""
    rng = np.random.default_rng(7)
    out = []
    for name in FIDELITY_PHOTOS:
        array = photo(name)
        height, width = array.shape[:2]
        for long_side in (700, 1200, 1600):
            crop = array[: int(height * rng.uniform(0.7, 1)), : int(width * rng.uniform(0.7, 1))]
            if long_side == 1600:  # square, so that the 8x reduction (sides >= 1536) is used
                crop = crop[: min(crop.shape[:2]), : min(crop.shape[:2])]
            scale = long_side / max(crop.shape[:2])
            size = (round(crop.shape[1] * scale), round(crop.shape[0] * scale))
            out.append(jpeg(resized(crop, size), quality=int(rng.integers(60, 95))))
    return out


def test_reduced_decode_is_close_to_pdqhash_on_full_decode() -> None:
    distances, quality_gaps, reductions = [], [], []
    for data in fidelity_set():
        reference = naive(Image.open(io.BytesIO(data)))
        image = Image.open(io.BytesIO(data))
        width = image.size[0]
        fast = pdq_from_luma(decode_luma_for_pdq(image))
        reductions.append(round(width / image.size[0]))  # draft shrinks .size to the decoded
        distances.append(hamming_distance(fast.hash, reference.hash))
        quality_gaps.append(abs(fast.quality - reference.quality))
    assert set(reductions) >= {2, 4, 8}, "the reduced decode was not exercised"
    assert np.median(distances) <= 4, distances
    assert np.percentile(distances, 99) <= 16, distances
    assert max(quality_gaps) <= 5, quality_gaps


def test_decoded_luma_stands_for_the_stored_image_only_unmodified() -> None:
    data = jpeg(resized(photo("rocket"), (1000, 667)))
    decoded = decode_luma_for_pdq(Image.open(io.BytesIO(data)))
    assert isinstance(decoded, DecodedLuma)
    assert decoded.stored_size == (667, 1000) and decoded.scale == 2
    assert decoded.shape == (334, 500)
    restored = pickle.loads(pickle.dumps(decoded))  # e.g. sent to a worker process
    assert (restored.stored_size, restored.scale) == (decoded.stored_size, decoded.scale)
    assert pdq_from_luma(restored) == pdq_from_luma(decoded)
    # Anything derived from it is an ordinary small image, hashed as such.
    for derived in (decoded[:, :], decoded.copy(), decoded + 0, np.rot90(decoded)):
        assert getattr(derived, "stored_size", None) is None
    assert pdq_from_luma(decoded.copy()) == pdq_from_luma(np.asarray(decoded))


def test_pdq_from_image_is_decode_then_hash() -> None:
    data = jpeg(resized(photo("rocket"), (1000, 667)))
    direct = pdq_from_image(Image.open(io.BytesIO(data)))
    assert direct == pdq_from_luma(decode_luma_for_pdq(Image.open(io.BytesIO(data))))


# --- every Pillow mode ----------------------------------------------------------------------

MODES: list[tuple[str, str | None]] = [
    ("RGB", "PNG"), ("RGBA", "PNG"), ("LA", "PNG"), ("L", "PNG"), ("P", "PNG"), ("1", "PNG"),
    ("I;16", "PNG"), ("I", "TIFF"), ("F", "TIFF"), ("CMYK", "TIFF"), ("La", None),
    ("RGB", "JPEG"), ("L", "JPEG"), ("CMYK", "JPEG"),
]  # fmt: skip


def in_mode(array: np.ndarray, mode: str) -> Image.Image:
    image = Image.fromarray(array)
    if mode in ("I;16", "I", "F", "La"):  # greyscale-derived modes
        return image.convert("LA" if mode == "La" else "L").convert(mode)
    return image.convert(mode)


@pytest.mark.parametrize(("mode", "fmt"), MODES)
def test_every_mode_hashes_like_the_naive_path(mode: str, fmt: str | None) -> None:
    """Each mode gives the hash of `convert("RGB")`'s pixels (JPEGs: of their decoded luma)."""
    image = in_mode(resized(photo("astronaut"), (900, 700)), mode)
    reference = naive(image.convert("LA") if mode == "La" else image)  # La has no RGB conversion
    if fmt is not None:  # hash an opened, not yet loaded file
        out = io.BytesIO()
        image.save(out, fmt)
        image = Image.open(io.BytesIO(out.getvalue()))
        assert image.mode == mode
        reference = naive(Image.open(io.BytesIO(out.getvalue())))
    fast = pdq_from_luma(decode_luma_for_pdq(image))
    # JPEGs are decoded reduced and to the Y channel, the other formats exactly as naive.
    assert hamming_distance(fast.hash, reference.hash) <= (12 if fmt == "JPEG" else 2)
    assert abs(fast.quality - reference.quality) <= (3 if fmt == "JPEG" else 0)


# --- tiny images ----------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(1, 1), (4, 50), (50, 4)])
def test_images_below_5px_get_the_empty_hash(size: tuple[int, int]) -> None:
    """The reference refuses sides < 5 px: all-zero hash and quality 0."""
    for data in (jpeg(resized(photo("chelsea"), size)), None):
        image = Image.open(io.BytesIO(data)) if data else Image.new("RGB", size, (200, 10, 10))
        result = pdq_from_luma(decode_luma_for_pdq(image))
        assert result == PDQResult(hash=bytes(32), quality=0)
        assert naive(Image.new("RGB", size)).hash == bytes(32)


def test_10px_images_hash_without_crashing() -> None:
    flat = pdq_from_image(Image.new("RGB", (10, 10), (90, 120, 200)))
    assert flat.quality == 0  # no gradients: a hash nobody should match on
    tiny = Image.fromarray(resized(photo("coffee"), (10, 10)))
    data = jpeg(np.asarray(tiny))
    fast = pdq_from_luma(decode_luma_for_pdq(Image.open(io.BytesIO(data))))
    reference = naive(Image.open(io.BytesIO(data)))
    assert len(fast.hash) == 32 and 0 <= fast.quality <= 100
    assert hamming_distance(fast.hash, reference.hash) <= 16
    assert abs(fast.quality - reference.quality) <= 3


# --- dihedral variants ----------------------------------------------------------------------

TRANSFORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "original": lambda a: a,
    "rotate90": lambda a: np.rot90(a, 1),  # counter-clockwise
    "rotate180": lambda a: np.rot90(a, 2),
    "rotate270": lambda a: np.rot90(a, 3),
    "flipx": lambda a: a[::-1],  # top-to-bottom
    "flipy": lambda a: a[:, ::-1],  # left-to-right
    "flip_plus1": lambda a: a.transpose(1, 0, 2),
    "flip_minus1": lambda a: np.rot90(a, 2).transpose(1, 0, 2),
}


@pytest.mark.parametrize(("name", "size"), [("astronaut", (451, 300)), ("gravel", (500, 380))])
def test_dihedral_variants_match_the_transformed_pixels(name: str, size: tuple[int, int]) -> None:
    """Variant k is close to pdqhash of the actually rotated/flipped image (also on texture)."""
    assert tuple(TRANSFORMS) == DIHEDRAL_ORDER
    array = resized(photo(name), size)
    variants = pdq_dihedral_from_luma(luma_from_image(Image.fromarray(array)))
    for variant, transform in zip(variants, TRANSFORMS.values(), strict=True):
        reference = naive(Image.fromarray(np.ascontiguousarray(transform(array))))
        assert hamming_distance(variant.hash, reference.hash) <= 2  # exact up to rounding
        assert variant.quality == reference.quality
    assert variants[0] == pdq_from_luma(luma_from_image(Image.fromarray(array)))


@pytest.mark.parametrize("name", ["coffee", "gravel"])
def test_dihedral_of_reduced_decode(name: str) -> None:
    """From a 4x reduced decode, each variant stays close to the transformed full image."""
    data = jpeg(resized(photo(name), (1200, 900)))
    variants = pdq_dihedral_from_luma(decode_luma_for_pdq(Image.open(io.BytesIO(data))))
    array = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    distances = []
    for variant, transform in zip(variants, TRANSFORMS.values(), strict=True):
        reference = naive(Image.fromarray(np.ascontiguousarray(transform(array))))
        distances.append(hamming_distance(variant.hash, reference.hash))
    assert max(distances) <= 8, distances


# --- Meta's conformance images --------------------------------------------------------------


def expected_rows() -> list[dict[str, str]]:
    if not (CONFORMANCE / "EXPECTED.tsv").is_file():
        return []
    with open(CONFORMANCE / "EXPECTED.tsv", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


needs_conformance = pytest.mark.skipif(
    not expected_rows(), reason=f"conformance data not found at {CONFORMANCE}"
)


@needs_conformance
@pytest.mark.parametrize("row", expected_rows(), ids=lambda row: row["path"])
def test_conformance_with_meta_expected_hashes(row: dict[str, str]) -> None:
    """Within 16 bits of Meta's expected hash, the tolerance the reference projects accept."""
    fast = pdq_from_image(Image.open(CONFORMANCE / row["path"]))
    distance = hamming_distance(fast.hash, bytes.fromhex(row["pdq_hex"]))
    if fast.quality < 50:
        pytest.skip(f"quality {fast.quality} < 50, not used for matching (distance {distance})")
    assert distance <= 16


@needs_conformance
def test_dihedral_order_matches_meta_bridge_images() -> None:
    """Variants of bridge-1 against Meta's hashes of the 8 rotated/flipped bridge files."""
    rows = sorted((r for r in expected_rows() if "/dih/" in r["path"]), key=lambda r: r["path"])
    assert len(rows) == len(DIHEDRAL_ORDER)
    image = Image.open(CONFORMANCE / rows[0]["path"])
    variants = pdq_dihedral_from_luma(decode_luma_for_pdq(image))
    for variant, row in zip(variants, rows, strict=True):
        assert hamming_distance(variant.hash, bytes.fromhex(row["pdq_hex"])) <= 16, row["path"]


def test_compiled_and_numpy_loops_hash_alike(
    compiled_loops: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The compiled resample sums in another order (buffers agree to float rounding) and its
    quality is the reference's arithmetic: the same hashes and qualities on the fidelity set,
    at full size and reduced."""
    from safeset.signals import pdq_fast

    if compiled_loops == "numpy":
        pytest.skip("compares both loops: runs once, starting from the compiled ones")
    lumas = [decode_luma_for_pdq(Image.open(io.BytesIO(data))) for data in fidelity_set()]
    lumas += [np.asarray(luma, dtype=np.float32) for luma in lumas[:6]]  # as plain images
    compiled = [pdq_from_luma(luma) for luma in lumas]
    monkeypatch.setattr(pdq_fast, "_compiled", None)
    assert [pdq_from_luma(luma) for luma in lumas] == compiled


def test_compiled_quality_is_numpys_to_the_unit(compiled_loops: str) -> None:
    """The compiled quality sums truncated steps in other loops and integer widths than numpy:
    the same number on buffers of every kind, steps landing exactly on a unit included."""
    from safeset.signals import pdq_fast

    if compiled_loops == "numpy":
        pytest.skip("compares both loops: runs once, starting from the compiled ones")
    rng = np.random.default_rng(7)
    buffers = [rng.uniform(0, 255, (64, 64)) for _ in range(20)]
    buffers += [rng.integers(0, 256, (64, 64)) * 1.0 for _ in range(20)]  # whole levels
    buffers += [rng.integers(0, 100, (64, 64)) * 2.55 for _ in range(20)]  # steps of one unit
    buffers += [np.zeros((64, 64)), np.full((64, 64), 255.0), np.indices((64, 64)).sum(0) * 4.0]
    for buffer in (np.ascontiguousarray(b, dtype=np.float32) for b in buffers):
        compiled = pdq_fast._quality(buffer)
        saved, pdq_fast._compiled = pdq_fast._compiled, None
        try:
            assert pdq_fast._quality(buffer) == compiled
        finally:
            pdq_fast._compiled = saved
