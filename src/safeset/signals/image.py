"""Decoding a stored file's bytes for the pixel signals, with hostile input contained.

An ``ImageView`` decodes lazily and at most once per need: the reduced-scale luminance PDQ uses,
or the full pixels reference hashes and classifiers use. Every failure becomes an
``UnreadableImage`` with a short reason that ends up in the sample's error column; nothing here
may raise anything else for bad input.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from safeset.limits import TooLargeImage, check_decoded_size
from safeset.signals.jpeg_fast import decode_jpeg_luma, jpeg_header
from safeset.signals.pdq_fast import decode_luma_for_pdq
from safeset.signals.pdq_reference import PDQResult

# Pillow warns above MAX_IMAGE_PIXELS and refuses above twice that; a dataset scanner treats
# both as a decompression bomb rather than spend gigabytes on one sample. 128 Mpixel (400 MB as
# RGB) is far above any training image yet bounds what one worker can be made to allocate.
MAX_PIXELS = 128 * 1024 * 1024
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


class UnreadableImage(Exception):
    """The bytes are not an image safeset can decode; the message is the recorded reason."""


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


# How the image formats a disguised file would use begin (JPEG, PNG, GIF, WebP, BMP, TIFF,
# JPEG 2000, JPEG XL, ICO, PSD; AVIF/HEIF by their ``ftyp`` box at byte 4).
IMAGE_SIGNATURES = (
    b"\xff\xd8\xff",
    b"\x89PNG\r\n\x1a\n",
    b"GIF87a",
    b"GIF89a",
    b"BM",
    b"II*\x00",
    b"MM\x00*",
    b"\x00\x00\x00\x0cjP  ",
    b"\xff\x4f\xff\x51",
    b"\xff\x0a",
    b"\x00\x00\x00\x0cJXL ",
    b"\x00\x00\x01\x00",
    b"8BPS",
)


def has_image_signature(data: bytes) -> bool:
    """Whether bytes begin as an image file does, whatever the file is called.

    For a sample's files named as something else (a caption, metadata): trying Pillow on each
    costs ~30 us, a quarter of a small sample's hashing. Every file is hashed exactly anyway;
    this only decides which ones are worth a perceptual hash too.
    """
    return (
        data.startswith(IMAGE_SIGNATURES)
        or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")
        or data[4:8] == b"ftyp"
    )


class ImageView:
    """One stored file seen as an image: its header, and its pixels decoded on demand."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self._unused: Image.Image | None = None  # the first decode reuses the open header
        self._format: str | None = None
        self._luma: np.ndarray | None = None
        self._pixels: Image.Image | None = None
        # (width, height) of the file the stored one was resized from, where metadata says
        # (img2dataset's original_width/height): lets the unpadded PDQ variant undo padding.
        self.original_size: tuple[int, int] | None = None
        # The 64 x 64 buffer the fast PDQ hashed, kept for the near-copy descriptors.
        self.pdq_buffer: np.ndarray | None = None
        # A plain JPEG simplejpeg can decode (``jpeg_fast``) is not opened with Pillow unless a
        # decode needs it: the reduced-scale luma then comes from simplejpeg.
        self._simple_jpeg = (size := jpeg_header(data, max_pixels=MAX_PIXELS)) is not None
        if size is None:
            header = open_image(data)
            size, self._format, self._unused = header.size, header.format, header
        self.size: tuple[int, int] = size  # (width, height) of the stored pixels

    @property
    def format(self) -> str | None:
        """Pillow's name for the format ("JPEG", "MPO", "PNG", ...)."""
        if self._format is None:
            self._unused = self._unused or open_image(self.data)
            self._format = self._unused.format
        return self._format

    def _fresh(self) -> Image.Image:
        img, self._unused = self._unused, None
        return img if img is not None else open_image(self.data)

    def pdq_luma(self) -> np.ndarray:
        """Luminance decoded at the reduced scale PDQ needs (see ``pdq_fast``)."""
        if self._luma is None and self._simple_jpeg:
            fast = decode_jpeg_luma(self.data, max_pixels=MAX_PIXELS, size=self.size)
            self._luma = fast[2] if fast is not None else None  # None: Pillow's path decides
        if self._luma is None:
            self._luma = _decoding(lambda: decode_luma_for_pdq(self._fresh()))
        return self._luma

    def pixels(self) -> Image.Image:
        """The stored pixels, fully decoded (EXIF orientation deliberately not applied)."""
        if self._pixels is None:
            self._pixels = _decoding(lambda: _loaded(self._fresh()))
        return self._pixels


def _loaded(img: Image.Image) -> Image.Image:
    check_decoded_size(img.mode, img.size)
    img.load()
    return img


def _decoding(decode):
    try:
        return decode()
    except UnreadableImage:
        raise
    except TooLargeImage as exc:
        raise UnreadableImage(str(exc)) from None
    except MemoryError:
        raise UnreadableImage("image too large to decode in memory") from None
    except Exception as exc:  # decoders raise many types on truncated or corrupt data
        raise UnreadableImage(f"truncated or corrupt image data: {exc}") from None


@dataclass(frozen=True)
class ImageFacts:
    width: int
    height: int
    pdq: PDQResult
    # The 8 rotation/flip variants (index 0 = as stored) when asked for, else empty.
    pdq_dihedral: tuple[PDQResult, ...] = ()


def image_facts(data: bytes, *, dihedral: bool = False, exact_pdq: bool = False) -> ImageFacts:
    """Size and PDQ of the stored pixels, as ``safeset hash`` prints them.

    By default PDQ comes from a reduced-size decode (see pdq_fast); ``exact_pdq`` decodes in
    full and hashes with Meta's reference code, for users who need reference hashes.
    """
    from safeset.signals.base import ComputeOptions
    from safeset.signals.pdq import PDQ

    view = ImageView(data)
    values = PDQ().compute(view, ComputeOptions(dihedral=dihedral, exact=exact_pdq))
    results = tuple(PDQResult(v.value, v.quality) for v in values)
    width, height = view.size
    return ImageFacts(width, height, results[0], results if dihedral else ())
