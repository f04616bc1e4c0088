"""The simplejpeg decode path against the Pillow path it replaces (the reference here).

Every JPEG is decoded both ways: the simplejpeg luma must be the one ``decode_luma_for_pdq``
gives (shape, scale, stored size and pixels), and ``image_facts`` must give the same facts with
simplejpeg as without it. JPEGs outside its scope must fall back, with Pillow's verdicts.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from safeset.examples import bundled_photo
from safeset.signals import jpeg_fast
from safeset.signals.image import MAX_PIXELS, UnreadableImage, image_facts
from safeset.signals.pdq_fast import DecodedLuma, decode_luma_for_pdq

from . import hostile

# Every test here runs with the compiled loops and with numpy alone (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("compiled_loops")

pytest.importorskip("simplejpeg")


def _jpeg(img: Image.Image, **options: object) -> bytes:
    out = io.BytesIO()
    img.save(out, "JPEG", **options)
    return out.getvalue()


def _cases() -> dict[str, bytes]:
    photo = bundled_photo("chelsea.png", max_side=1600)
    cases = {}
    # Sides around each DCT-scale boundary (192, 384, 768, 1536 with the 192 target).
    for side in (4, 5, 64, 191, 192, 383, 384, 400, 767, 768, 1535, 1536):
        img = photo.resize((side, max(5, side * 3 // 4)) if side >= 5 else (side, side))
        cases[f"rgb-{side}"] = _jpeg(img, quality=85)
    wide = photo.resize((1100, 390))
    cases["gray"] = _jpeg(wide.convert("L"), quality=90)
    cases["444"] = _jpeg(wide, subsampling=0, quality=95)
    cases["422"] = _jpeg(wide, subsampling=1, quality=75)
    cases["progressive"] = _jpeg(wide, progressive=True, quality=80)
    cases["optimized"] = _jpeg(wide, optimize=True, quality=60)
    cases["exif-rotated"] = hostile.exif_rotated_jpeg()[0]
    for name in ("astronaut.png", "coffee.png", "rocket.jpg"):
        cases[name] = _jpeg(bundled_photo(name, max_side=700), quality=88)
    return cases


CASES = _cases()


@pytest.mark.parametrize("name", sorted(CASES))
def test_luma_is_pillows(name: str) -> None:
    data = CASES[name]
    img = Image.open(io.BytesIO(data))
    size = img.size
    expected = decode_luma_for_pdq(img)
    fast = jpeg_fast.decode_jpeg_luma(data, max_pixels=MAX_PIXELS)
    if min(size) < 5:  # unhashable: left to Pillow's path
        assert fast is None
        return
    assert fast is not None
    width, height, luma = fast
    assert (width, height) == size
    assert isinstance(luma, DecodedLuma) == isinstance(expected, DecodedLuma)
    assert getattr(luma, "scale", 1.0) == getattr(expected, "scale", 1.0)
    assert getattr(luma, "stored_size", None) == getattr(expected, "stored_size", None)
    np.testing.assert_array_equal(np.asarray(luma), np.asarray(expected))


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("dihedral", [False, True])
def test_facts_are_the_pillow_paths(
    name: str, dihedral: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = image_facts(CASES[name], dihedral=dihedral)
    monkeypatch.setattr(jpeg_fast, "simplejpeg", None)
    assert image_facts(CASES[name], dihedral=dihedral) == fast


def test_out_of_scope_jpegs_fall_back_to_pillow(monkeypatch: pytest.MonkeyPatch) -> None:
    good = hostile.good_images()
    bad = hostile.bad_images()
    cmyk = good["cmyk.jpg"]
    assert jpeg_fast.decode_jpeg_luma(cmyk, max_pixels=MAX_PIXELS) is None
    truncated = bad["truncated.jpg"][0]
    assert jpeg_fast.decode_jpeg_luma(truncated, max_pixels=MAX_PIXELS) is None
    assert jpeg_fast.decode_jpeg_luma(good["gray.png"], max_pixels=MAX_PIXELS) is None
    # Over the pixel bound: Pillow's path then calls it a bomb.
    assert jpeg_fast.decode_jpeg_luma(good["rgb.jpg"], max_pixels=100) is None
    with_fast = image_facts(cmyk)
    for data, reason in bad.values():
        with pytest.raises(UnreadableImage, match=f"^{reason}"):
            image_facts(data)
    monkeypatch.setattr(jpeg_fast, "simplejpeg", None)
    assert image_facts(cmyk) == with_fast
    assert jpeg_fast.decode_jpeg_luma(CASES["gray"], max_pixels=MAX_PIXELS) is None


@pytest.mark.parametrize(
    ("width", "height", "scale"),
    [(5, 5, 1), (383, 1000, 1), (384, 384, 2), (1000, 767, 2), (768, 800, 4), (4000, 1536, 8)],
)
def test_draft_scale_is_pillows_choice(width: int, height: int, scale: int) -> None:
    img = Image.new("L", (width, height))
    out = io.BytesIO()
    img.save(out, "JPEG")
    reopened = Image.open(io.BytesIO(out.getvalue()))
    reopened.draft("L", (192, 192))
    assert -(-width // jpeg_fast.draft_scale(width, height)) == reopened.size[0]
    assert jpeg_fast.draft_scale(width, height) == scale


@pytest.mark.parametrize("name", ["rgb-400", "gray", "progressive", "exif-rotated"])
def test_image_view_reports_what_pillow_does(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from safeset.signals.image import ImageView

    data = CASES[name]
    view = ImageView(data)
    luma = np.asarray(view.pdq_luma())
    img = Image.open(io.BytesIO(data))
    assert (view.size, view.format) == (img.size, img.format)
    monkeypatch.setattr(jpeg_fast, "simplejpeg", None)
    pillow_view = ImageView(data)
    np.testing.assert_array_equal(luma, np.asarray(pillow_view.pdq_luma()))
    assert (pillow_view.size, pillow_view.format) == (view.size, view.format)


def test_decode_bound_is_pillows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Over the per-image decode budget the fast path steps aside and Pillow's refuses it."""
    from safeset import limits

    data = CASES["rgb-768"]
    monkeypatch.setattr(limits, "MAX_DECODED_BYTES", 1000)
    assert jpeg_fast.decode_jpeg_luma(data, max_pixels=MAX_PIXELS) is None
    with pytest.raises(UnreadableImage, match=r"^too large"):
        image_facts(data)
