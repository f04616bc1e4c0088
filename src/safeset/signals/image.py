"""Decoding a sample's bytes into the facts the matchers need, with hostile input contained.

Every failure becomes an ``UnreadableImage`` with a short reason that ends up in the sample's
error column; nothing here may raise anything else for bad input.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from safeset.signals.pdq import PDQResult, pdq_reference, pdq_reference_dihedral
from safeset.signals.pdq_fast import decode_luma_for_pdq, pdq_dihedral_from_luma, pdq_from_luma

# Pillow warns above MAX_IMAGE_PIXELS and refuses above twice that; a dataset scanner treats
# both as a decompression bomb rather than spend gigabytes on one sample. 128 Mpixel (400 MB as
# RGB) is far above any training image yet bounds what one worker can be made to allocate.
MAX_PIXELS = 128 * 1024 * 1024
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


class UnreadableImage(Exception):
    """The bytes are not an image safeset can decode; the message is the recorded reason."""


@dataclass(frozen=True)
class ImageFacts:
    width: int
    height: int
    pdq: PDQResult
    # The 8 rotation/flip variants (index 0 = as stored) when asked for, else empty.
    pdq_dihedral: tuple[PDQResult, ...] = ()


def open_image(data: bytes) -> Image.Image:
    """Open (lazily) an image, turning every hostile-input failure into UnreadableImage."""
    if not data:
        raise UnreadableImage("empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise UnreadableImage(f"decompression bomb: {exc}") from None
    except UnidentifiedImageError:
        raise UnreadableImage("not a recognised image format") from None
    except Exception as exc:  # Pillow plugins raise a zoo of types on malformed headers.
        raise UnreadableImage(f"corrupt image header: {exc}") from None
    return img


def image_facts(data: bytes, *, dihedral: bool = False, exact_pdq: bool = False) -> ImageFacts:
    """Size and PDQ of the stored pixels (EXIF orientation deliberately not applied).

    By default PDQ comes from a reduced-size decode (see pdq_fast); ``exact_pdq`` decodes in
    full and hashes with Meta's reference code, for users who need reference hashes.
    """
    img = open_image(data)
    width, height = img.size  # read first: a reduced decode changes img.size
    try:
        if exact_pdq:
            img.load()
            variants = pdq_reference_dihedral(img) if dihedral else [pdq_reference(img)]
        else:
            luma = decode_luma_for_pdq(img)
            variants = pdq_dihedral_from_luma(luma) if dihedral else [pdq_from_luma(luma)]
    except MemoryError:
        raise UnreadableImage("image too large to decode in memory") from None
    except Exception as exc:  # decoders raise many types on truncated or corrupt data
        raise UnreadableImage(f"truncated or corrupt image data: {exc}") from None
    return ImageFacts(
        width=width,
        height=height,
        pdq=variants[0],
        pdq_dihedral=tuple(variants) if dihedral else (),
    )
