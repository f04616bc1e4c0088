"""How much one sample may make a worker hold: stored bytes read, and pixels decoded.

A dataset can declare sizes it never stores (a sparse file, a GNU sparse tar member, a small
compressed member that inflates to gigabytes, a 144-byte PNG declaring 65000x1 pixels). Every
such size is checked against these bounds before anything is read or allocated, and a sample
over them becomes an error row saying "too large: ...", never a MemoryError that ends a scan.

The bounds are module attributes, read at each check, so a caller (or a test) can change them.
"""

from __future__ import annotations

#: One stored file (an image, a caption, any tar member or folder file). Far above any
#: training image (img2dataset downloads are capped at 20 MB by default), yet a bound on what a
#: worker holds per file.
MAX_FILE_BYTES = 256 * 1024 * 1024

#: Pixels decoded at once for one image, in Pillow's own buffer (4 bytes a pixel for RGB and
#: RGBA, 1 for greyscale). Hashing holds about twice this (the buffer and its float luminance),
#: so this caps one worker near 600 MB for one image: 64 Mpixel RGB(A), 8192 x 8192.
MAX_DECODED_BYTES = 256 * 1024 * 1024

#: The largest square a classifier's letterbox may allocate before resizing (NudeNet pads to a
#: square, then resizes). Images within the decoded-size bound fit unless very long or wide
#: (65000 x 1 would need 12 GB): those are resized first, then padded.
MAX_LETTERBOX_BYTES = 256 * 1024 * 1024

# Bytes per pixel of Pillow's image buffer, by mode (multi-band modes use 4: Pillow pads RGB).
_BUFFER_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2}


class TooLarge(OSError):
    """A stored file over ``MAX_FILE_BYTES``: it is never read. The message is the reason."""


class TooLargeImage(Exception):
    """An image whose decoded pixels would exceed ``MAX_DECODED_BYTES``."""


def check_file_size(name: str, size: int) -> None:
    if size > MAX_FILE_BYTES:
        raise TooLarge(f"too large: {name} holds {size:,} bytes (limit {MAX_FILE_BYTES:,})")


def decoded_bytes(mode: str, width: int, height: int) -> int:
    return width * height * _BUFFER_BYTES.get(mode, 4)


def check_decoded_size(mode: str, size: tuple[int, int]) -> None:
    """Refuse, before decoding, pixels that would not fit the per-image budget."""
    width, height = size
    need = decoded_bytes(mode, width, height)
    if need > MAX_DECODED_BYTES:
        raise TooLargeImage(
            f"too large: {width}x{height} {mode} pixels decode to {need:,} bytes "
            f"(limit {MAX_DECODED_BYTES:,})"
        )
