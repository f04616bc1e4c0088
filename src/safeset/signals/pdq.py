"""PDQ, Meta's perceptual hash: 256 bits of the stored pixels, compared by Hamming distance.

Hashes are handled as 32 raw bytes, MSB first, so ``bytes.hex()`` gives the same string as
Meta's reference hasher and as hashes shared through ThreatExchange. By default a hash comes
from a reduced-size decode (``pdq_fast``, a median 0 bits from the reference); the reference
path (``pdq_reference``: full decode, ``pdqhash``) is used where the job asks for exact hashes
and to confirm near misses of the fast one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from safeset.matching.pdq_index import PDQIndex
from safeset.signals.base import ComputeOptions, HashValue, PixelHashType
from safeset.signals.image import ImageView
from safeset.signals.pdq_fast import RECHECK_MARGIN, pdq_dihedral_from_luma
from safeset.signals.pdq_reference import (
    MIN_MATCH_QUALITY,
    pdq_reference,
    pdq_reference_dihedral,
)
from safeset.signals.regions import pdq_keeping_buffer
from safeset.signals.unpad import VARIANT_UNPADDED, unpadded_pdq


class PDQ(PixelHashType):
    name = "pdq"
    nbytes = 32
    aliases = ("pdq_hash",)
    # ThreatExchange's convention for a match.
    default_threshold = 31
    min_quality = MIN_MATCH_QUALITY
    recheck_margin = RECHECK_MARGIN

    def compute(self, image: ImageView, options: ComputeOptions) -> list[HashValue]:
        if options.exact:
            pixels = image.pixels()
            results = (
                pdq_reference_dihedral(pixels) if options.dihedral else [pdq_reference(pixels)]
            )
        else:
            luma = image.pdq_luma()
            # The buffer hashed is kept on the image for the near-copy descriptors.
            results = (
                pdq_dihedral_from_luma(luma)
                if options.dihedral
                else [pdq_keeping_buffer(image, luma)]
            )
        values = [HashValue(r.hash, r.quality, n) for n, r in enumerate(results)]
        if options.unpad and (inside := unpadded_pdq(image, exact=options.exact)) is not None:
            values.append(HashValue(inside.hash, inside.quality, VARIANT_UNPADDED))
        return values

    @classmethod
    def build_index(cls, values: np.ndarray) -> PDQIndex:
        return PDQIndex.build(values)

    @classmethod
    def load_index(cls, path: Path) -> PDQIndex:
        return PDQIndex.load(path)
