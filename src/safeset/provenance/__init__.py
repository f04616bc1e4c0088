"""Provenance of synthetic and face-swapped images, and the opt-outs creators embed.

One module per signal: ``c2pa`` (manifests, offline), ``xmp`` (IPTC digital source type, PLUS
Data Mining, credit), ``generators`` (A1111, ComfyUI, InvokeAI, NovelAI, Fooocus, Midjourney,
hosted generators' marks), ``watermark`` (Stable Diffusion's dwtDct marks), ``faceswap``
(128 px paste artefacts), ``optout``; ``inspect`` combines them per file (``safeset
inspect``). Needs the ``provenance`` extra (c2pa-python, PyWavelets, OpenCV).

For the scan (wired by the core's signal registry, not here):

``PROVENANCE_FIELDS``
    the result columns, as ``pyarrow.Field`` objects.
``provenance_row(data, *, options)``
    those columns' values for one sample's bytes. Cheap checks first (metadata, then C2PA
    only when a JUMBF box is present), then one decode for the watermark; the face-swap score
    only when ``options.face_swap``. Never raises for bad input: ``provenance_error`` says why.
    The generator's prompt is matched against the policy's term lists
    (``prompt_sexual_terms``/``prompt_minor_terms``), as captions are.
``provenance_rules(row, policy=ProvenancePolicy())``
    ``(action, reason)`` pairs for a merged result row (these columns plus the core's
    ``explicit_score``, ``faces`` [{age...}], ``minor_terms``). Defaults, all overridable:

    - synthetic or face-swapped + explicit + a minor indicator -> remove, reasons
      ``synthetic+explicit+minor-indicators`` and ``explicit+minor-indicators`` (the latter
      makes the core print its may-be-illegal warning; ``SYNTHETIC_ABUSE_WARNING`` adds that
      synthetic abuse imagery is illegal in many jurisdictions too);
    - face swap suspected (score >= threshold on a face of 256 px or more) + explicit ->
      remove, reason ``face-swap+explicit`` (likely non-consensual intimate imagery);
    - synthetic alone -> keep, reason ``synthetic:<evidence>`` (tagged and counted);
    - face swap suspected alone -> keep, reason ``face-swap-suspected:<score>``;
    - an embedded opt-out -> remove, reason ``opt-out:<where>``.

    "Explicit" is ``explicit_score >= thresholds.explicit`` or, for a generated image, a
    sexual term in its own prompt (what the generator was asked for). Minor indicators: an
    apparent age under ``thresholds.minor_age``, a minor term in the caption or the prompt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from safeset.policy import EXPLICIT_MINOR_REASON, Action, Terms
from safeset.provenance.c2pa import TrustAnchors
from safeset.provenance.faceswap import DEFAULT_THRESHOLD
from safeset.provenance.inspect import (
    Findings,
    InspectOptions,
    inspect_bytes,
    inspect_file,
    metadata_findings,
    pixel_findings,
)

__all__ = [
    "PROVENANCE_FIELDS",
    "SYNTHETIC_ABUSE_WARNING",
    "InspectOptions",
    "ProvenanceActions",
    "ProvenanceOptions",
    "ProvenancePolicy",
    "ProvenanceThresholds",
    "TrustAnchors",
    "inspect_bytes",
    "inspect_file",
    "provenance_row",
    "provenance_rules",
]

SYNTHETIC_EXPLICIT_MINOR_REASON = "synthetic+explicit+minor-indicators"
SYNTHETIC_ABUSE_WARNING = (
    "Synthetic or manipulated sexual imagery of minors is illegal in many jurisdictions, as "
    "photographs are (e.g. the UK, Canada, Australia and most EU member states; US federal "
    "law covers obscene computer-generated depictions). Do not open these samples; report "
    "them to a hotline (NCMEC CyberTipline in the US, the IWF in the UK, an INHOPE member "
    "elsewhere) and remove them."
)

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
    terms: Terms = field(default_factory=Terms)


@dataclass(frozen=True)
class ProvenanceActions:
    synthetic_explicit_minor: Action = Action.REMOVE
    face_swap_explicit: Action = Action.REMOVE
    synthetic: Action = Action.KEEP
    face_swap: Action = Action.KEEP
    opt_out: Action = Action.REMOVE


@dataclass(frozen=True)
class ProvenanceThresholds:
    face_swap: float = DEFAULT_THRESHOLD
    explicit: float = 0.6  # as policy.Thresholds
    minor_age: float = 25.0


@dataclass(frozen=True)
class ProvenancePolicy:
    actions: ProvenanceActions = field(default_factory=ProvenanceActions)
    thresholds: ProvenanceThresholds = field(default_factory=ProvenanceThresholds)


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
    _fill(row, found, options.terms)
    return row


def _fill(row: dict[str, Any], found: Findings, terms: Terms) -> None:
    c2pa, generator = found.c2pa or {}, found.generator or {}
    source = found.digital_source_type
    row["c2pa_present"] = bool(c2pa.get("present"))
    row["c2pa_validation"] = c2pa.get("validation")
    row["c2pa_claim_generator"] = c2pa.get("claim_generator")
    row["digital_source_type"] = source["value"] if source else None
    row["generator"] = generator.get("name")
    prompt = generator.get("prompt")
    row["generator_prompt"] = prompt
    sexual, minor = terms.lists()
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


def provenance_rules(
    row: dict[str, Any], policy: ProvenancePolicy = ProvenancePolicy()
) -> list[tuple[str, str]]:
    """``(action, reason)`` pairs for one merged result row (see the module docstring)."""
    acts, limits = policy.actions, policy.thresholds
    fired: list[tuple[str, str]] = []
    synthetic = list(row.get("synthetic_evidence") or [])
    swap = row.get("face_swap_max")
    swapped = swap is not None and swap >= limits.face_swap
    score = row.get("explicit_score")
    prompt_sexual = list(row.get("prompt_sexual_terms") or []) if synthetic else []
    explicit = (score is not None and score >= limits.explicit) or bool(prompt_sexual)
    ages = [f.get("age") for f in row.get("faces") or [] if f.get("age") is not None]
    minor = [f"minor-face:age={a:.0f}" for a in ages if a < limits.minor_age]
    minor += [f"caption-term:minor:{t}" for t in row.get("minor_terms") or []]
    minor += [f"prompt-term:minor:{t}" for t in row.get("prompt_minor_terms") or []]
    if (synthetic or swapped) and explicit and minor:
        act = acts.synthetic_explicit_minor
        fired += [(act, SYNTHETIC_EXPLICIT_MINOR_REASON), (act, EXPLICIT_MINOR_REASON)]
        fired += [(act, r) for r in minor]
        fired += [(act, f"prompt-term:sexual:{t}") for t in prompt_sexual]
    elif swapped and explicit:
        fired.append((acts.face_swap_explicit, "face-swap+explicit"))
    if synthetic:
        fired += [(acts.synthetic, f"synthetic:{e}") for e in synthetic]
    if swapped:
        fired.append((acts.face_swap, f"face-swap-suspected:{swap:.2f}"))
    fired += [(acts.opt_out, f"opt-out:{r}") for r in row.get("opt_out") or []]
    return [(str(a), r) for a, r in fired]
