"""Provenance as result columns: what ``scan --provenance`` records for each sample."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from safeset.provenance.c2pa import TrustAnchors
from safeset.provenance.inspect import Findings, InspectOptions, metadata_findings, pixel_findings
from safeset.signals.terms import DEFAULT_MINOR_TERMS, DEFAULT_SEXUAL_TERMS, TermList

PROVENANCE_FIELDS: list[pa.Field] = [
    pa.field("c2pa_present", pa.bool_()),
    pa.field("c2pa_validation", pa.string()),
    pa.field("c2pa_claim_generator", pa.string()),
    pa.field("digital_source_type", pa.string()),
    pa.field("generator", pa.string()),
    pa.field("generator_prompt", pa.string()),
    pa.field("prompt_sexual_terms", pa.list_(pa.string())),
    pa.field("prompt_minor_terms", pa.list_(pa.string())),
    pa.field("watermark", pa.string()),
    pa.field("face_swap_scores", pa.list_(pa.float32())),  # every face found, in box order
    pa.field("face_swap_max", pa.float32()),  # over faces of MIN_RELIABLE px or more
    pa.field("opt_out", pa.list_(pa.string())),
    pa.field("synthetic_evidence", pa.list_(pa.string())),
    pa.field("provenance_error", pa.string()),
]


@dataclass(frozen=True)
class ProvenanceOptions:
    c2pa: bool = True
    trust_anchors: TrustAnchors | None = None
    watermark: bool = True
    face_swap: bool = False  # the costly one: only when asked
    # The policy's word lists, which a generator's prompt is matched against like a caption.
    sexual_terms: tuple[str, ...] = DEFAULT_SEXUAL_TERMS
    minor_terms: tuple[str, ...] = DEFAULT_MINOR_TERMS


def provenance_row(data: bytes, *, options: ProvenanceOptions = ProvenanceOptions()) -> dict:
    """Values for ``PROVENANCE_FIELDS`` from one sample's bytes (see the module docstring)."""
    row: dict[str, Any] = {f.name: None for f in PROVENANCE_FIELDS}
    try:
        inspect_options = InspectOptions(options.c2pa, options.trust_anchors)
        found = metadata_findings(data, inspect_options)
        pixel_findings(found, data, watermark=options.watermark, face_swap=options.face_swap)
    except ImportError:
        raise  # a missing extra is the user's to fix, not a property of the sample
    except Exception as exc:  # hostile input must never end a scan
        row["provenance_error"] = f"provenance check failed: {type(exc).__name__}"
        return row
    _fill(row, found, options)
    return row


def _fill(row: dict[str, Any], found: Findings, options: ProvenanceOptions) -> None:
    c2pa, generator = found.c2pa or {}, found.generator or {}
    source = found.digital_source_type
    row["c2pa_present"] = bool(c2pa.get("present"))
    row["c2pa_validation"] = c2pa.get("validation")
    row["c2pa_claim_generator"] = c2pa.get("claim_generator")
    row["digital_source_type"] = source["value"] if source else None
    row["generator"] = generator.get("name")
    prompt = generator.get("prompt")
    row["generator_prompt"] = prompt
    sexual = TermList("sexual", options.sexual_terms)
    minor = TermList("minor", options.minor_terms)
    row["prompt_sexual_terms"] = list(sexual.find(prompt)) if prompt else []
    row["prompt_minor_terms"] = list(minor.find(prompt)) if prompt else []
    row["watermark"] = (found.watermark or {}).get("name")
    faces = found.face_swap
    if faces is not None:
        row["face_swap_scores"] = [f["score"] for f in faces]
        reliable = [f["score"] for f in faces if f["reliable"]]
        row["face_swap_max"] = max(reliable) if reliable else None
    row["opt_out"] = found.opt_out or []
    evidence = []
    if source and source["synthetic"]:
        evidence.append(f"{source['from']}:{source['value']}")
    if generator:
        evidence.append(f"generator:{generator['name']}")
    if row["watermark"]:
        evidence.append(f"watermark:{row['watermark']}")
    row["synthetic_evidence"] = evidence
    row["provenance_error"] = found.error
