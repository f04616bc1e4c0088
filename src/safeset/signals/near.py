"""Descriptors for expansion: what the end of a scan searches for near-copies of its hits.

The Stanford Internet Observatory's LAION-5B audit found 27 PhotoDNA hits in one segment and 88
more by searching the dataset around them: copies of a known image that no list knows, because
they were cropped, captioned, framed or overlaid. ``safeset.expansion`` does that search from
what the scan stored, so it costs one pass over the results, not a second decode. This signal
stores descriptors cut from the 64 x 64 buffer PDQ has just hashed (``regions.buffer_hashes``:
each region resampled to 64 x 64 and hashed the PDQ way, a few microseconds each):

- for every sample, a few fixed regions (``CANDIDATE_BOXES``: the top and bottom 80%, which
  drop a caption banner at either end, and the centre 80%, which drops a frame or an edge
  overlay), in ``near_regions``; its PDQ (the full region) is already in the ``pdq`` column;
- for each remove-tier hit only, ~70 regions of it (``PROBE_BOXES``: crops of 3-10% on a grid
  of offsets, top and bottom parts of several heights, centres), in ``near_probes``: a crop of
  the hit meets a probe with its own full hash, a copy with a banner meets one with its top or
  bottom region. Cost is proportional to the hits.

Values are packed 32 bytes each into one binary cell; samples under PDQ's quality gate store
none (flat images match too easily). ``near_of``, ``near_distance`` and ``near_raised`` are
filled by expansion at the end of the scan.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from safeset.signals.content import Signal
from safeset.signals.image import UnreadableImage
from safeset.signals.pdq_reference import MIN_MATCH_QUALITY
from safeset.signals.regions import FULL, Box, buffer_hashes, pdq_buffer

if TYPE_CHECKING:
    from safeset.pipeline import Record
    from safeset.policy import Policy

CANDIDATE_BOXES: tuple[Box, ...] = (
    (0.0, 0.0, 1.0, 0.8),
    (0.0, 0.2, 1.0, 1.0),
    (0.1, 0.1, 0.9, 0.9),
)


def _probe_boxes() -> tuple[Box, ...]:
    boxes: list[Box] = [FULL]
    # Crops of 5% and 10% of each side at a 5 x 5 grid of offsets: a crop a quarter-step off
    # the grid lands a median 14 bits from its probe (a 3 x 3 grid: 22, and 30% past 31).
    for keep in (0.95, 0.9):
        offsets = [(1 - keep) * k / 4 for k in range(5)]
        boxes += [(x, y, x + keep, y + keep) for y in offsets for x in offsets]
    boxes += [(0.03, 0.03, 0.97, 0.97), (0.07, 0.07, 0.93, 0.93)]
    for f in (0.8, 0.84, 0.88, 0.92, 0.96):
        boxes += [(0.0, 0.0, 1.0, f), (0.0, 1.0 - f, 1.0, 1.0)]
    # A copy's central region against the hit's: frames and edge overlays.
    boxes += [(0.1, 0.1, 0.9, 0.9), (0.08, 0.08, 0.92, 0.92), (0.12, 0.12, 0.88, 0.88)]
    return tuple(boxes)


PROBE_BOXES = _probe_boxes()


class NearSignal(Signal):
    name = "near"
    fields = (
        pa.field("near_regions", pa.binary()),
        pa.field("near_probes", pa.binary()),
        pa.field("near_of", pa.string()),
        pa.field("near_distance", pa.int16()),
        pa.field("near_raised", pa.bool_()),
    )

    def compute(self, records: Sequence[Record], policy: Policy) -> None:
        from safeset.policy import Action

        hits_removed = policy.actions.get("hash_match", Action.REMOVE) == Action.REMOVE
        described, buffers = [], []
        for record in records:
            row = record.row
            row["near_regions"] = row["near_probes"] = None
            row["near_of"], row["near_distance"], row["near_raised"] = None, None, False
            buffer = _buffer(record)
            if buffer is not None:
                described.append(record)
                buffers.append(buffer)
        if not buffers:
            return
        stack = np.stack(buffers)
        for record, regions in zip(described, buffer_hashes(stack, CANDIDATE_BOXES), strict=True):
            record.row["near_regions"] = regions
        hits = [n for n, record in enumerate(described) if hits_removed and record.matches]
        for n, probes in zip(hits, buffer_hashes(stack[hits], PROBE_BOXES), strict=True):
            described[n].row["near_probes"] = probes


def _buffer(record: Record) -> np.ndarray | None:
    """The sample's PDQ buffer, where it has one worth describing: flat images (under PDQ's
    quality gate) match too easily."""
    if record.image is None or (record.row.get("pdq_quality") or 0) < MIN_MATCH_QUALITY:
        return None
    try:
        return pdq_buffer(record.image)
    except UnreadableImage:  # the hash step has already recorded why
        return None
