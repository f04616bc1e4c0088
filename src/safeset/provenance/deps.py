"""Lazy imports for the provenance checks (the ``safeset[provenance]`` extra)."""

from __future__ import annotations

import importlib
from types import ModuleType

from safeset.errors import SafesetError

INSTALL_HINT = "pip install 'safeset[provenance]'"
_PROVIDERS = {
    "c2pa": "c2pa-python",
    "pywt": "PyWavelets",
    "cv2": "opencv-python-headless",
}


class ProvenanceDependencyError(SafesetError, ImportError):
    """A provenance check's package is missing; the message says what to install."""


def require(module: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        provider = _PROVIDERS.get(module, module)
        raise ProvenanceDependencyError(
            f"provenance checks need {provider} ({module} could not be imported); "
            f"install the provenance extra: {INSTALL_HINT}"
        ) from exc
