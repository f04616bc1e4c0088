"""Machine-readable opt-outs embedded in a file: C2PA training-and-mining, PLUS Data Mining.

A creator who reserves text-and-data mining (EU DSM Directive art. 4(3), which the EU AI Act
makes general-purpose model providers honour) can say so in the file itself:

* a C2PA ``c2pa.training-mining`` (or ``cawg.training-mining``) assertion whose
  ``c2pa.ai_training``, ``c2pa.ai_generative_training``, ``c2pa.data_mining`` or
  ``c2pa.ai_inference`` entry has ``use: notAllowed`` (or ``constrained``);
* the IPTC/PLUS ``plus:DataMining`` XMP property with a ``DMI-PROHIBITED*`` value.

For URL tables the HTTP side (``X-Robots-Tag: noai``, TDMRep ``tdm-reservation: 1``) is
honoured while downloading, in ``safeset.sources.fetch``.
"""

from __future__ import annotations

from typing import Any

from safeset.provenance.c2pa import training_mining_opt_outs
from safeset.provenance.xmp import XmpFacts, data_mining_prohibited, source_type_name


def embedded_opt_outs(c2pa_facts: dict[str, Any] | None, xmp: XmpFacts) -> list[str]:
    """Reasons, e.g. ``c2pa:c2pa.ai_training=notAllowed``, ``xmp:plus:DataMining=DMI-...``."""
    reasons = training_mining_opt_outs(c2pa_facts)
    mining = xmp.get("data_mining")
    if data_mining_prohibited(mining):
        reasons.append(f"xmp:plus:DataMining={source_type_name(mining or '')}")
    return reasons
