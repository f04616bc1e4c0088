"""C2PA manifests through c2pa-python (the Content Authenticity Initiative's c2pa-rs), offline.

Reported: whether a manifest store is embedded, its validation state, the claim generator, the
actions with their ``digitalSourceType`` (from every manifest in the store, so that an AI
ingredient of an edited image counts), the training-and-mining assertion and the signer.

Offline by construction: remote manifest fetching and OCSP are switched off in the reader's
settings, so a file pointing at a remote manifest is reported as such, never fetched. Trust:
only anchors the user supplies (a PEM file) are used; without one, trust is not checked at all
and a good signature reads "signature valid, signer not checked against a trust list" (c2pa's
built-in behaviour would otherwise mix in whatever anchors the library ships).

Cheap first: files without a JUMBF box or a PNG ``caBX`` chunk never reach c2pa, which is
imported only when one is there.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safeset.errors import SafesetError
from safeset.provenance.deps import require
from safeset.provenance.xmp import source_type_name

UNTRUSTED_MESSAGE = "signature valid, signer not checked against a trust list"
TRAINING_MINING_LABELS = ("c2pa.training-mining", "cawg.training-mining")
# Entries of the training-and-mining assertion that, when not allowed, are an opt-out.
OPT_OUT_USES = frozenset({"notAllowed", "constrained"})
# The byte strings a C2PA manifest store cannot be embedded without.
_MARKERS = (b"jumb", b"caBX", b"c2pa")


@dataclass(frozen=True)
class TrustAnchors:
    """PEM certificates the user trusts as C2PA signers' roots (``--trust-anchors FILE``)."""

    pem: str
    source: str

    @classmethod
    def load(cls, path: Path) -> TrustAnchors:
        try:
            pem = path.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise SafesetError(f"cannot read trust anchors {path}: {exc}") from None
        if "-----BEGIN CERTIFICATE-----" not in pem:
            raise SafesetError(f"trust anchors {path}: no PEM certificate in it")
        return cls(pem, path.name)


def may_have_manifest(data: bytes) -> bool:
    return any(marker in data for marker in _MARKERS)


def read_c2pa(
    data: bytes, mime: str | None, anchors: TrustAnchors | None = None
) -> dict[str, Any] | None:
    """The manifest store's facts, or None when the file embeds none."""
    if not mime or not may_have_manifest(data):
        return None
    c2pa = require("c2pa")
    try:
        reader = c2pa.Reader.try_create(mime, io.BytesIO(data), None, _context(c2pa, anchors))
    except c2pa.C2paError as exc:
        return {"present": True, "validation_state": "Unreadable", "validation": _error(exc)}
    if reader is None:
        return None
    with reader:
        store = json.loads(reader.json())
    return summarise(store, anchors)


def _context(c2pa: Any, anchors: TrustAnchors | None) -> Any:
    settings: dict[str, Any] = {
        "verify": {
            "remote_manifest_fetch": False,
            "ocsp_fetch": False,
            "verify_trust": anchors is not None,
        }
    }
    if anchors is not None:
        settings["trust"] = {"trust_anchors": anchors.pem}
    return c2pa.Context(c2pa.Settings.from_dict(settings))


def _error(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"manifest could not be read: {text[:200]}"


def summarise(store: dict[str, Any], anchors: TrustAnchors | None) -> dict[str, Any]:
    manifests = store.get("manifests") or {}
    active = manifests.get(store.get("active_manifest")) or {}
    state = store.get("validation_state") or ("Invalid" if store.get("validation_status") else None)
    failures = _failure_codes(store)
    actions, source_types = [], []
    for label, manifest in manifests.items():
        for assertion in manifest.get("assertions") or []:
            if str(assertion.get("label", "")).startswith("c2pa.actions"):
                for action in (assertion.get("data") or {}).get("actions") or []:
                    entry = {
                        "action": action.get("action"),
                        "digitalSourceType": action.get("digitalSourceType"),
                        "softwareAgent": _agent(action.get("softwareAgent")),
                        "manifest": "active" if label == store.get("active_manifest") else label,
                    }
                    actions.append({k: v for k, v in entry.items() if v})
                    if action.get("digitalSourceType"):
                        source_types.append(source_type_name(action["digitalSourceType"]))
    signature = active.get("signature_info") or {}
    return {
        "present": True,
        "validation_state": state,
        "validation": _validation_text(state, failures, anchors),
        "failures": failures,
        "claim_generator": _claim_generator(active),
        "title": active.get("title"),
        "actions": actions,
        "digital_source_types": list(dict.fromkeys(source_types)),
        "training_mining": _training_mining(active),
        "signer": {k: signature.get(k) for k in ("issuer", "common_name") if signature.get(k)},
        "manifests": len(manifests),
    }


def _failure_codes(store: dict[str, Any]) -> list[str]:
    results = store.get("validation_results") or {}
    codes = [f.get("code") for f in (results.get("activeManifest") or {}).get("failure") or []]
    for ingredient in results.get("ingredientDeltas") or []:
        failures = (ingredient.get("validationDeltas") or {}).get("failure") or []
        codes += [f.get("code") for f in failures]
    codes += [s.get("code") for s in store.get("validation_status") or []]
    return [c for c in dict.fromkeys(codes) if c]


def _validation_text(state: str | None, failures: list[str], anchors: TrustAnchors | None) -> str:
    if state == "Trusted":
        return f"signature valid, signer trusted (anchors: {anchors.source if anchors else '?'})"
    real = [c for c in failures if c != "signingCredential.untrusted"]
    if state == "Valid" and not real:
        if anchors is None:
            return UNTRUSTED_MESSAGE
        return f"signature valid, signer not in the trust list ({anchors.source})"
    return "invalid: " + (", ".join(real) if real else str(state))


def _claim_generator(manifest: dict[str, Any]) -> str | None:
    info = manifest.get("claim_generator_info")
    if isinstance(info, list) and info and isinstance(info[0], dict):
        name, version = info[0].get("name"), info[0].get("version")
        return f"{name} {version}" if version else name
    return manifest.get("claim_generator")


def _agent(agent: Any) -> str | None:
    if isinstance(agent, dict):
        return agent.get("name")
    return agent if isinstance(agent, str) else None


def _training_mining(manifest: dict[str, Any]) -> dict[str, str] | None:
    for assertion in manifest.get("assertions") or []:
        if assertion.get("label") in TRAINING_MINING_LABELS:
            entries = (assertion.get("data") or {}).get("entries") or {}
            return {k: str(v.get("use")) for k, v in entries.items() if isinstance(v, dict)}
    return None


def training_mining_opt_outs(c2pa_facts: dict[str, Any] | None) -> list[str]:
    """``c2pa:c2pa.ai_training=notAllowed``-style reasons from a manifest's assertion."""
    uses = (c2pa_facts or {}).get("training_mining") or {}
    return [f"c2pa:{k}={v}" for k, v in uses.items() if v in OPT_OUT_USES]
