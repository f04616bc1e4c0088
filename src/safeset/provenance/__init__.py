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

from typing import Any

# The scan-facing names, imported on first use: ``safeset.policy`` imports this package's rules
# while it is itself being imported, so nothing here may import the policy eagerly.
_EXPORTS = {
    "PROVENANCE_FIELDS": "safeset.provenance.row",
    "ProvenanceOptions": "safeset.provenance.row",
    "provenance_row": "safeset.provenance.row",
    "provenance_rules": "safeset.provenance.rules",
    "SYNTHETIC_ABUSE_WARNING": "safeset.provenance.rules",
    "SYNTHETIC_EXPLICIT_MINOR_REASON": "safeset.provenance.rules",
    "InspectOptions": "safeset.provenance.inspect",
    "inspect_bytes": "safeset.provenance.inspect",
    "inspect_file": "safeset.provenance.inspect",
    "TrustAnchors": "safeset.provenance.c2pa",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(name)
    import importlib

    return getattr(importlib.import_module(_EXPORTS[name]), name)
