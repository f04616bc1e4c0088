"""PDQ, Meta's perceptual hash: 256 bits, compared by Hamming distance.

Hashes are handled as 32 raw bytes, MSB first, so ``bytes.hex()`` gives the same string as
Meta's reference hasher and as hashes shared through ThreatExchange.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pdqhash
from PIL import Image

PDQ_BYTES = 32
# ThreatExchange convention: hashes of flat or tiny images are too weak to match on.
MIN_MATCH_QUALITY = 50


@dataclass(frozen=True)
class PDQResult:
    hash: bytes
    quality: int

    @property
    def hex(self) -> str:
        return self.hash.hex()


def _result(bits: np.ndarray, quality: int) -> PDQResult:
    return PDQResult(np.packbits(bits.astype(np.uint8)).tobytes(), int(quality))


def _rgb(img: Image.Image) -> np.ndarray:
    return np.asarray(img if img.mode == "RGB" else img.convert("RGB"))


def _dihedral_views(a: np.ndarray) -> list[np.ndarray]:
    """The 8 rotations/flips of an HxWxC array; index 0 is the original."""
    r90 = np.rot90(a, 1)
    return [
        a,
        r90,
        np.rot90(a, 2),
        np.rot90(a, 3),
        a[:, ::-1],
        a[::-1, :],
        np.ascontiguousarray(r90[::-1, :]),
        r90[:, ::-1],
    ]


def pdq_reference(img: Image.Image) -> PDQResult:
    """PDQ of the full-resolution stored pixels, as Meta's reference hasher computes it."""
    bits, quality = pdqhash.compute(_rgb(img))
    return _result(bits, quality)


def pdq_reference_dihedral(img: Image.Image) -> list[PDQResult]:
    """PDQ of the 8 actually rotated/flipped pixel arrays.

    ``pdqhash.compute_dihedral`` derives them from DCT symmetries instead, which on fine textures
    lands 34-42 bits away from the hash of the transformed image; hashing real pixels does not.
    """
    return [_result(*pdqhash.compute(np.ascontiguousarray(v))) for v in _dihedral_views(_rgb(img))]


def hamming_distance(a: bytes, b: bytes) -> int:
    """Number of differing bits between two PDQ hashes."""
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).bit_count()
