"""All provenance signals of one file, combined into one JSON-ready object.

``inspect_bytes(data, options)`` returns::

    {"c2pa": {...} | null, "digital_source_type": {...} | null, "generator": {...} | null,
     "watermark": {...} | null, "face_swap": [{box, score, r_in, r_out, reliable}...] | null,
     "opt_out": [reason...] | null}

Cheap checks run first and touch no pixel: the container's metadata (PNG text, EXIF, XMP) and,
only when a JUMBF box is present, C2PA. Pixels are decoded once, only for the watermark
(images of 256x256 or more) and the face-swap score (when asked). ``face_swap`` is null when
not run, ``[]`` when run and no face was found. Nothing is written anywhere: the image bytes
only live in memory (invariant 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from safeset.provenance.c2pa import TrustAnchors, read_c2pa
from safeset.provenance.generators import detect_generator, from_c2pa
from safeset.provenance.metadata import Metadata, read_metadata
from safeset.provenance.optout import embedded_opt_outs
from safeset.provenance.xmp import SYNTHETIC_SOURCE_TYPES, XmpFacts, read_xmp, source_type_name

KEYS = ("c2pa", "digital_source_type", "generator", "watermark", "face_swap", "opt_out")


@dataclass(frozen=True)
class InspectOptions:
    c2pa: bool = True
    trust_anchors: TrustAnchors | None = None
    watermark: bool = True
    face_swap: bool = True


@dataclass
class Findings:
    """The signals of one file, before they are turned into JSON or result columns."""

    meta: Metadata
    xmp: XmpFacts
    c2pa: dict[str, Any] | None = None
    generator: dict[str, Any] | None = None
    watermark: dict[str, Any] | None = None
    face_swap: list[dict[str, Any]] | None = None
    error: str | None = None

    @property
    def digital_source_type(self) -> dict[str, Any] | None:
        """From C2PA actions first (signed), else from XMP (anyone can write XMP). Among a
        store's manifests a synthetic type wins: an edit of a generated image stays generated."""
        names = (self.c2pa or {}).get("digital_source_types") or []
        synthetic = [n for n in names if n in SYNTHETIC_SOURCE_TYPES]
        for name in synthetic or names:
            return {"value": name, "from": "c2pa", "synthetic": name in SYNTHETIC_SOURCE_TYPES}
        uri = self.xmp.get("digital_source_type")
        if uri:
            name = source_type_name(uri)
            return {"value": name, "from": "xmp", "synthetic": name in SYNTHETIC_SOURCE_TYPES}
        return None

    @property
    def opt_out(self) -> list[str] | None:
        return embedded_opt_outs(self.c2pa, self.xmp) or None

    def as_dict(self) -> dict[str, Any]:
        out = {
            "c2pa": self.c2pa,
            "digital_source_type": self.digital_source_type,
            "generator": self.generator,
            "watermark": self.watermark,
            "face_swap": self.face_swap,
            "opt_out": self.opt_out,
        }
        if self.error:
            out["error"] = self.error
        return out


def metadata_findings(data: bytes, options: InspectOptions) -> Findings:
    """The cheap half: container metadata and C2PA, no pixel decoded."""
    meta = read_metadata(data)
    xmp = read_xmp(meta.xmp)
    found = Findings(meta, xmp)
    found.generator = detect_generator(meta, xmp)
    if options.c2pa:
        found.c2pa = read_c2pa(data, meta.mime, options.trust_anchors)
        if found.c2pa is None and xmp.get("provenance"):
            found.c2pa = {
                "present": False,
                "remote_manifest": xmp.get("provenance"),
                "validation": "remote manifest referenced, not fetched (offline)",
            }
        found.generator = found.generator or from_c2pa(found.c2pa)
    return found


def pixel_findings(found: Findings, data: bytes, *, watermark: bool, face_swap: bool) -> None:
    """The costly half: one decode, then the watermark and (if asked) the face-swap score."""
    if not (watermark or face_swap):
        return
    rgb = decode_rgb(data)
    if rgb is None:
        found.error = "image could not be decoded"
        return
    if watermark:
        from safeset.provenance.watermark import detect_watermark

        found.watermark = detect_watermark(rgb)
    if face_swap:
        from safeset.provenance.faceswap import score_faces

        found.face_swap = [f.as_dict() for f in score_faces(rgb)]


def decode_rgb(data: bytes) -> np.ndarray | None:
    from safeset.signals.image import UnreadableImage, open_image

    try:
        with open_image(data) as img:
            return np.asarray(img.convert("RGB"))
    except UnreadableImage:
        return None
    except Exception:  # truncated or corrupt pixel data
        return None


def inspect_bytes(data: bytes, options: InspectOptions = InspectOptions()) -> dict[str, Any]:
    found = metadata_findings(data, options)
    pixel_findings(found, data, watermark=options.watermark, face_swap=options.face_swap)
    return found.as_dict()


def inspect_file(path: Path, options: InspectOptions = InspectOptions()) -> dict[str, Any]:
    """``inspect_bytes`` of a file, with its path; an unreadable file is an ``error`` entry."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return {"file": str(path), **dict.fromkeys(KEYS), "error": exc.strerror or str(exc)}
    return {"file": str(path), **inspect_bytes(data, options)}
