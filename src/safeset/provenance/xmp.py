"""IPTC/XMP and EXIF: the digital source type, the PLUS Data Mining opt-out, tool and credit.

The IPTC Photo Metadata Standard puts ``Iptc4xmpExt:DigitalSourceType`` (a URI from the IPTC
NewsCodes vocabulary, ``.../digitalsourcetype/trainedAlgorithmicMedia`` for a generator's
output) and the PLUS ``plus:DataMining`` property (``.../DMI-PROHIBITED-AIMLTRAINING`` and kin:
the creator's text-and-data-mining reservation) in the XMP packet. Either may be written as an
attribute of ``rdf:Description`` or as a child element, with or without ``rdf:resource``, so
both are read. The packet is parsed with the standard library's expat-based ElementTree, which
resolves no external entities; a packet with a DTD (XMP never needs one) or that is not XML is
only searched for the two values.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

IPTC_EXT = "http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
PLUS = "http://ns.useplus.org/ldf/xmp/1.0/"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
DC = "http://purl.org/dc/elements/1.1/"
PHOTOSHOP = "http://ns.adobe.com/photoshop/1.0/"
XMP_BASIC = "http://ns.adobe.com/xap/1.0/"
XMP_RIGHTS = "http://ns.adobe.com/xap/1.0/rights/"
DCTERMS = "http://purl.org/dc/terms/"
DST_PREFIX = "http://cv.iptc.org/newscodes/digitalsourcetype/"
PLUS_VOCAB = "http://ns.useplus.org/ldf/vocab/"

# Digital source types that mean "made, wholly or in part, by a generative model or an
# algorithm" (IPTC NewsCodes). ``algorithmicallyEnhanced`` (an edit) is recorded, not counted.
SYNTHETIC_SOURCE_TYPES = frozenset(
    {
        "trainedAlgorithmicMedia",
        "compositeWithTrainedAlgorithmicMedia",
        "algorithmicMedia",
        "compositeSynthetic",
    }
)

# Properties read: (namespace, local name) -> the key they are reported under.
_PROPERTIES = {
    (IPTC_EXT, "DigitalSourceType"): "digital_source_type",
    (PLUS, "DataMining"): "data_mining",
    (PLUS, "OtherConstraints"): "other_constraints",
    (IPTC_EXT, "AISystemUsed"): "ai_system_used",
    (IPTC_EXT, "AISystemVersionUsed"): "ai_system_version",
    (IPTC_EXT, "AIPromptInformation"): "ai_prompt",
    (PHOTOSHOP, "Credit"): "credit",
    (XMP_BASIC, "CreatorTool"): "creator_tool",
    (DC, "creator"): "creator",
    (DC, "rights"): "rights",
    (DC, "description"): "description",
    (XMP_RIGHTS, "UsageTerms"): "usage_terms",
    (DCTERMS, "provenance"): "provenance",  # C2PA's pointer to a remote manifest
}
_FALLBACK = re.compile(
    r"(DigitalSourceType|DataMining)\W{1,4}(?:resource\W{1,3})?"
    r"(https?://[^\s\"'<>]+|[A-Za-z-]+)"
)


@dataclass(frozen=True)
class XmpFacts:
    values: dict[str, str] = field(default_factory=dict)

    def get(self, key: str) -> str | None:
        return self.values.get(key)


def read_xmp(packet: str | None) -> XmpFacts:
    """The properties in ``_PROPERTIES`` found in an XMP packet (first value of each)."""
    if not packet:
        return XmpFacts()
    if "<!DOCTYPE" in packet or "<!ENTITY" in packet:
        # XMP never needs a DTD; entity tricks (billion laughs) are not parsed at all.
        return _fallback(packet)
    try:
        root = ET.fromstring(_strip_packet_wrapper(packet))
    except ET.ParseError:
        return _fallback(packet)
    values: dict[str, str] = {}
    for element in root.iter():
        for name, value in element.attrib.items():
            _keep(values, name, value)
        tag = element.tag if isinstance(element.tag, str) else ""
        text = _element_value(element)
        if text:
            _keep(values, tag, text)
    return XmpFacts(values)


def _strip_packet_wrapper(packet: str) -> str:
    # <?xpacket ...?> processing instructions are legal XML; a BOM or junk before < is not.
    start = packet.find("<")
    return packet[start:] if start > 0 else packet


def _keep(values: dict[str, str], qualified: str, value: str) -> None:
    if not qualified.startswith("{"):
        return
    namespace, _, local = qualified[1:].partition("}")
    key = _PROPERTIES.get((namespace, local))
    value = value.strip()
    if key and value and key not in values:
        values[key] = value


def _element_value(element: ET.Element) -> str | None:
    """A property's value: its text, its rdf:resource, or the first rdf:li inside it."""
    resource = element.attrib.get(f"{{{RDF}}}resource")
    if resource:
        return resource
    if element.text and element.text.strip():
        return element.text
    for li in element.iter(f"{{{RDF}}}li"):
        if li.text and li.text.strip():
            return li.text
        resource = li.attrib.get(f"{{{RDF}}}resource")
        if resource:
            return resource
    return None


def _fallback(packet: str) -> XmpFacts:
    values = {}
    for name, value in _FALLBACK.findall(packet):
        key = "digital_source_type" if name == "DigitalSourceType" else "data_mining"
        values.setdefault(key, value)
    return XmpFacts(values)


def source_type_name(uri: str) -> str:
    """``http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia`` ->
    ``trainedAlgorithmicMedia`` (a bare name passes through; C2PA may also use the URI)."""
    return uri.rstrip("/").rsplit("/", 1)[-1]


def data_mining_prohibited(value: str | None) -> bool:
    """PLUS Data Mining values that reserve mining/training (every ``DMI-PROHIBITED*``)."""
    return bool(value) and source_type_name(value).upper().startswith("DMI-PROHIBITED")
