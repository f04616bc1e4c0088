"""Lazy imports for the provenance checks (the ``safeset[provenance]`` extra)."""

from __future__ import annotations

from types import ModuleType

from safeset.extras import MissingExtra, require_extra

PROVIDERS = {
    "c2pa": "c2pa-python",
    "pywt": "PyWavelets",
    "cv2": "opencv-python-headless",
}

ProvenanceDependencyError = MissingExtra


def require(module: str) -> ModuleType:
    """Import ``module`` or raise MissingExtra naming the provenance extra."""
    return require_extra(
        module, extra="provenance", purpose="provenance checks", providers=PROVIDERS
    )
