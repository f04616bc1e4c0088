"""Provenance as a content signal of the scan (``scan --provenance``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safeset.signals.content import Signal

if TYPE_CHECKING:
    from safeset.pipeline import Record
    from safeset.policy import Policy


def _fields():
    from safeset.provenance.row import PROVENANCE_FIELDS

    return tuple(PROVENANCE_FIELDS)


class ProvenanceSignal(Signal):
    """C2PA, IPTC/XMP/EXIF, generator metadata and watermarks of each decoded sample, and its
    faces' swap scores when ``face_swap``; the generator's prompt is matched against the
    policy's term lists."""

    name = "provenance"
    fields = _fields()

    def __init__(self, *, face_swap: bool = False, trust_anchors: Path | None = None) -> None:
        self.face_swap = face_swap
        self.trust_anchors = trust_anchors
        self._anchors: Any = None

    def describe(self) -> dict[str, Any]:
        anchors = str(self.trust_anchors.resolve()) if self.trust_anchors else None
        return {"face_swap": self.face_swap, "trust_anchors": anchors}

    def check_available(self) -> None:
        from safeset.provenance.c2pa import TrustAnchors
        from safeset.provenance.deps import PROVIDERS, require

        for module in PROVIDERS:
            require(module)
        if self.trust_anchors is not None:
            self._anchors = TrustAnchors.load(self.trust_anchors)

    def compute(self, records: Sequence[Record], policy: Policy) -> None:
        from safeset.provenance.c2pa import TrustAnchors
        from safeset.provenance.row import ProvenanceOptions, provenance_row

        if self.trust_anchors is not None and self._anchors is None:
            self._anchors = TrustAnchors.load(self.trust_anchors)
        options = ProvenanceOptions(
            trust_anchors=self._anchors,
            face_swap=self.face_swap,
            sexual_terms=policy.terms.sexual,
            minor_terms=policy.terms.minor,
        )
        for record in records:
            if record.image is not None:
                record.row.update(provenance_row(record.image.data, options=options))
