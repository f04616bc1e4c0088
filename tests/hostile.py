"""Broken and adversarial inputs, synthesised on the fly (benign content only)."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image

_rng = np.random.default_rng(11)


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def photo(size: tuple[int, int] = (160, 120)) -> Image.Image:
    """Smooth random structure: a real PDQ hash with high quality."""
    small = _rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    return Image.fromarray(small).resize(size, Image.BICUBIC)


def png_with_declared_size(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width x height``: a decompression bomb's calling card."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0"))
        + chunk(b"IEND", b"")
    )


def exif_rotated_jpeg() -> tuple[bytes, bytes]:
    """A JPEG tagged orientation=6 (rotate 90) and the same pixels without the tag."""
    img = photo((200, 100))
    exif = Image.Exif()
    exif[0x0112] = 6
    return _encode(img, "JPEG", quality=95, exif=exif.tobytes()), _encode(img, "JPEG", quality=95)


def good_images() -> dict[str, bytes]:
    """Every mode and container that must hash cleanly."""
    base = photo()
    frames = [photo(), photo()]
    arr16 = (np.asarray(base.convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    return {
        "rgb.jpg": _encode(base, "JPEG"),
        "cmyk.jpg": _encode(base.convert("CMYK"), "JPEG"),
        "gray.png": _encode(base.convert("L"), "PNG"),
        "gray16.png": _encode(Image.fromarray(arr16), "PNG"),
        "palette.png": _encode(base.convert("P"), "PNG"),
        "alpha.png": _encode(base.convert("RGBA"), "PNG"),
        "la.png": _encode(base.convert("LA"), "PNG"),
        "bilevel.png": _encode(base.convert("1"), "PNG"),
        "animated.gif": _encode(frames[0], "GIF", save_all=True, append_images=frames[1:]),
        "animated.webp": _encode(frames[0], "WEBP", save_all=True, append_images=frames[1:]),
        "still.webp": _encode(base, "WEBP"),
        "image.tiff": _encode(base, "TIFF"),
        "image.bmp": _encode(base, "BMP"),
        "tiny.png": _encode(photo((8, 8)), "PNG"),
        "one-pixel.png": _encode(Image.new("RGB", (1, 1), (200, 10, 10)), "PNG"),
    }


def bad_images() -> dict[str, tuple[bytes, str]]:
    """Bytes that must become error rows, with the start of the expected reason."""
    jpeg = _encode(photo(), "JPEG")
    png = _encode(photo(), "PNG")
    return {
        "empty.jpg": (b"", "empty file"),
        "truncated.jpg": (jpeg[: len(jpeg) // 2], "truncated or corrupt image data"),
        "truncated.png": (png[: len(png) // 2], "truncated or corrupt image data"),
        "random.jpg": (_rng.bytes(4096), "not a recognised image format"),
        "bomb.png": (png_with_declared_size(40_000, 40_000), "decompression bomb"),
        "page.svg": (
            b'<svg xmlns="http://www.w3.org/2000/svg"><rect/></svg>',
            "not a recognised image format",
        ),
        "page.jpg": (
            b"<!doctype html><html><body>404</body></html>",
            "not a recognised image format",
        ),
    }


def zero_png(width: int, height: int) -> bytes:
    """A valid RGBA PNG of zero pixels, compressed row by row (never whole in memory)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    compressor = zlib.compressobj(9)
    row = bytes(1 + 4 * width)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
