"""Explicit-content signal: NudeNet's body-part detector, run faster than NudeNet's own loop.

The model is NudeNet's YOLOv8 detector (the 320n ONNX file shipped in the ``nudenet`` wheel, or
any NudeNet-format export a user points at, e.g. 640m). Its detections are the reference: the
pre- and post-processing here reproduce ``nudenet.NudeDetector.detect`` step for step (square
bottom/right black padding, bilinear resize, /255, BGR channel order, 0.2 candidate threshold,
class-agnostic NMS at score 0.25 / IoU 0.45). What changes is only how the work is done:

* pixels come from an already-opened Pillow image (JPEGs may be draft-decoded near the model's
  input size, see ``draft_for_detection``) instead of a full ``cv2.imread``;
* decoding boxes, thresholding and clipping are numpy array operations over all 2,100 anchors at
  once instead of a Python loop per anchor (with decoding, a quarter of NudeNet's time per image);
* one ONNX Runtime session with explicit threads, sequential execution and full graph
  optimisation, fed batches because the model's batch axis is dynamic.

Nothing here keeps, writes or logs pixels: callers get scores only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
from PIL import Image

from safeset import limits
from safeset.errors import SafesetError
from safeset.signals.content import Signal
from safeset.signals.image import UnreadableImage, open_image
from safeset.signals.screen_deps import require

if TYPE_CHECKING:
    import onnxruntime

    from safeset.pipeline import Record
    from safeset.policy import Policy

# NudeNet's output channels 4.. in its model order (the list in nudenet/nudenet.py); a test
# checks this against the installed package so a reordered model cannot go unnoticed.
NUDENET_LABELS: tuple[str, ...] = (
    "FEMALE_GENITALIA_COVERED",
    "FACE_FEMALE",
    "BUTTOCKS_EXPOSED",
    "FEMALE_BREAST_EXPOSED",
    "FEMALE_GENITALIA_EXPOSED",
    "MALE_BREAST_EXPOSED",
    "ANUS_EXPOSED",
    "FEET_EXPOSED",
    "BELLY_COVERED",
    "FEET_COVERED",
    "ARMPITS_COVERED",
    "ARMPITS_EXPOSED",
    "FACE_MALE",
    "BELLY_EXPOSED",
    "MALE_GENITALIA_EXPOSED",
    "ANUS_COVERED",
    "FEMALE_BREAST_COVERED",
    "BUTTOCKS_COVERED",
)

# The exposed-* classes that make an image sexually explicit. MALE_BREAST, BELLY, ARMPITS and
# FEET exposed are left out on purpose: they fire on beach, sport and holiday photos.
EXPOSED_CLASSES: tuple[str, ...] = (
    "FEMALE_BREAST_EXPOSED",
    "FEMALE_GENITALIA_EXPOSED",
    "MALE_GENITALIA_EXPOSED",
    "BUTTOCKS_EXPOSED",
    "ANUS_EXPOSED",
)

# Proposed default for "review": the lowest of 0.5/0.6/0.7/0.8 at which no natural benign
# photo crop fired in bench/bench_screen.py (0 of 939 at >= 0.6, 2 of 939 at >= 0.5; the only
# hits at >= 0.6 were crops of scikit-image's synthetic colour wheel, 31 of 61). Recall cannot
# be measured here by design, so policies may go lower where a minor's face is also present.
DEFAULT_REVIEW_THRESHOLD = 0.6

# NudeNet's own thresholds (nudenet.py, _postprocess): anchors below CANDIDATE never reach NMS,
# and NMS drops boxes below KEEP, so every reported score is >= 0.25.
CANDIDATE_SCORE = 0.2
KEEP_SCORE = 0.25
NMS_IOU = 0.45
DEFAULT_INPUT_SIZE = 320
# On one core batching buys only ~1% (bench: 31.3 vs 30.9 images per CPU-second for the bare
# session at batch 4 vs 1); 4 keeps that while holding little memory.
DEFAULT_BATCH = 4
# YOLOv8's coarsest stride: an input side must be a multiple of it.
STRIDE = 32

# Kept detections of one image: boxes (N, 4) as x, y, w, h; scores (N,); class ids (N,).
Kept = tuple[np.ndarray, np.ndarray, np.ndarray]

_EXPOSED_IDS = np.array([NUDENET_LABELS.index(name) for name in EXPOSED_CLASSES])


@dataclass(frozen=True)
class ExplicitResult:
    explicit_score: float  # max score over EXPOSED_CLASSES, 0.0 if none detected
    class_scores: dict[str, float]  # per exposed class, max score of its kept detections


@dataclass(frozen=True)
class Detection:
    """One kept NudeNet detection, in stored-pixel coordinates (x, y, w, h as NudeNet)."""

    label: str
    score: float
    box: tuple[float, float, float, float]


def bundled_model_path() -> Path:
    """The 320n ONNX detector that ships inside the ``nudenet`` wheel."""
    nudenet = require("nudenet")
    return Path(nudenet.__file__).with_name("320n.onnx")


def make_session(model_path: Path, threads: int) -> onnxruntime.InferenceSession:
    """An ONNX Runtime CPU session sized for ``threads`` cores and no more.

    ORT's default sizes its spinning thread pool to the machine, not to the process's CPU
    affinity: pinned to one core, NudeNet's default session spent ~1.8x the CPU time of a
    one-thread session per image here. In a pool of one worker per core that is pure loss, so
    the caller says how many threads.
    """
    ort = require("onnxruntime")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads == 1:
        # Nothing to hand work to; a spinning pool would only steal the core from us.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(
        str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
    )


def draft_for_detection(image: Image.Image, input_size: int = DEFAULT_INPUT_SIZE) -> None:
    """Ask Pillow to decode a still-unloaded JPEG at a reduced scale (1/2, 1/4, 1/8).

    Opt-in, by calling it. The reduction is the strongest that keeps the long side
    >= ``input_size``, so the detector still downsizes (never upsizes) the decoded pixels. It is
    a no-op for non-JPEGs, for loaded images and when no scale fits (e.g. a 512px JPEG for a
    320 model). Draft decoding averages DCT blocks where NudeNet's bilinear resize samples, so
    scores move: by up to 0.13 on the bench's 1-2k px images (no class crossed 0.25).
    """
    if image.format != "JPEG":  # Pillow itself ignores draft() once pixels are loaded
        return
    width, height = image.size
    side = max(width, height)
    if side < 2 * input_size:
        return
    # draft() picks the largest scale with both sides >= the request; asking for the image's
    # own aspect at long side input_size makes that "long side >= input_size".
    request = (max(1, -(-width * input_size // side)), max(1, -(-height * input_size // side)))
    image.draft("RGB", request)


def letterbox(image: Image.Image, size: int) -> tuple[np.ndarray, int, int]:
    """Square the image with black at the bottom/right, resize to size x size (RGB uint8).

    Mirrors NudeNet's copyMakeBorder + blobFromImage(INTER_LINEAR) on the same pixels.
    Returns the resized HxWx3 array and the stored width and height.
    """
    cv2 = require("cv2")
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    pixels = np.asarray(rgb)
    height, width = pixels.shape[:2]
    side = max(width, height)
    if side * side * 3 > limits.MAX_LETTERBOX_BYTES:
        # A very long or wide image (65000x1) would make a square of gigabytes: resize the
        # content first, then pad. Same geometry; only the edge pixels' interpolation differs.
        inner = (max(1, round(width * size / side)), max(1, round(height * size / side)))
        content = cv2.resize(pixels, inner, interpolation=cv2.INTER_AREA)
        resized = cv2.copyMakeBorder(
            content, 0, size - inner[1], 0, size - inner[0], cv2.BORDER_CONSTANT, value=(0, 0, 0)
        )
        return resized, width, height
    square = cv2.copyMakeBorder(
        pixels, 0, side - height, 0, side - width, cv2.BORDER_CONSTANT, value=(0, 0, 0)
    )
    resized = cv2.resize(square, (size, size), interpolation=cv2.INTER_LINEAR)
    return resized, width, height


def trim_padding(square: np.ndarray, width: int, height: int) -> np.ndarray:
    """Drop the all-black padding rows/cols beyond the content, to the next stride multiple.

    This is the opt-in ``rect`` mode: a 4:3 photo runs the network on 320x256 instead of
    320x320. Content pixels are unchanged, but the network sees less black border, so scores
    move a little; bench/bench_screen.py measures by how much.
    """
    size = square.shape[0]
    side = max(width, height)
    rows = min(size, -(-math.ceil(height * size / side) // STRIDE) * STRIDE)
    cols = min(size, -(-math.ceil(width * size / side) // STRIDE) * STRIDE)
    return square[:rows, :cols]


def to_blob(squares: Sequence[np.ndarray]) -> np.ndarray:
    """N resized RGB squares -> the model's NCHW float32 input.

    NudeNet's reader swaps channels twice (cvtColor RGBA2BGR on a BGR image, then swapRB), so
    the network actually receives BGR; to give the same detections we do the same.
    """
    batch = np.stack(squares)[..., ::-1]  # RGB -> BGR
    blob = np.empty((batch.shape[0], 3, *batch.shape[1:3]), dtype=np.float32)
    np.multiply(batch.transpose(0, 3, 1, 2), np.float32(1.0 / 255.0), out=blob)
    return blob


def decode(
    output: np.ndarray, width: int, height: int, size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One image's raw (4 + classes, anchors) output -> candidate boxes, scores, class ids.

    Vectorised form of NudeNet's per-anchor loop: keep anchors whose best class score is
    >= 0.2, centre -> corner, scale by the padded side, clip to the stored image.
    """
    class_scores = output[4:]
    best = class_scores.max(axis=0)
    keep = np.flatnonzero(best >= CANDIDATE_SCORE)
    scores = best[keep]
    class_ids = class_scores[:, keep].argmax(axis=0)
    cx, cy, bw, bh = output[:4, keep]
    side = max(width, height)
    scale = np.float32(side / size)
    x = np.clip((cx - bw / 2) * scale, 0, width)
    y = np.clip((cy - bh / 2) * scale, 0, height)
    w = np.minimum(bw * scale, width - x)
    h = np.minimum(bh * scale, height - y)
    return np.stack([x, y, w, h], axis=1), scores, class_ids


def suppress(boxes: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Indices kept by class-agnostic NMS, exactly as NudeNet calls cv2.dnn.NMSBoxes."""
    if len(scores) == 0:
        return np.empty(0, dtype=np.int64)
    cv2 = require("cv2")
    kept = cv2.dnn.NMSBoxes(boxes, scores, KEEP_SCORE, NMS_IOU)
    return np.asarray(kept, dtype=np.int64).reshape(-1)


def exposed_scores(scores: np.ndarray, class_ids: np.ndarray) -> dict[str, float]:
    """Per exposed class, the max score among kept detections of that class."""
    found: dict[str, float] = {}
    for class_id in np.intersect1d(class_ids, _EXPOSED_IDS):
        found[NUDENET_LABELS[class_id]] = float(scores[class_ids == class_id].max())
    return found


class ExplicitDetector:
    """Batched NudeNet detections reduced to an explicit-content score per image."""

    def __init__(
        self,
        model_path: Path | None = None,
        threads: int = 1,
        *,
        input_size: int | None = None,
        batch_size: int = DEFAULT_BATCH,
        rect: bool = False,
    ) -> None:
        """``input_size`` defaults to the model's fixed input side, else 320 (NudeNet's default;
        pass 640 for a 640m export). ``threads`` is ONNX Runtime's intra-op thread count.
        ``rect=True`` (opt-in) trims letterbox padding for speed on non-square images, at the
        cost of scores that are no longer NudeNet's exactly (see ``trim_padding``)."""
        require("cv2")
        path = Path(model_path) if model_path is not None else bundled_model_path()
        self.session = make_session(path, threads)
        model_input = self.session.get_inputs()[0]
        self.input_name: str = model_input.name
        fixed_side = model_input.shape[-1]
        self.input_size = input_size or (
            fixed_side if isinstance(fixed_side, int) else DEFAULT_INPUT_SIZE
        )
        fixed_shape = any(isinstance(dim, int) for dim in model_input.shape[-2:])
        self.rect = rect and not fixed_shape
        # Trimmed inputs differ in shape from image to image, so rect mode runs them singly.
        fixed_batch = isinstance(model_input.shape[0], int)
        self.batch_size = 1 if fixed_batch or self.rect else max(1, batch_size)

    def detect(self, images: Sequence[Image.Image]) -> list[ExplicitResult]:
        """Explicit-content scores for opened images, in order."""
        return [
            ExplicitResult(max(per_class.values(), default=0.0), per_class)
            for per_class in (exposed_scores(scores, ids) for _, scores, ids in self._kept(images))
        ]

    def detections(self, images: Sequence[Image.Image]) -> list[list[Detection]]:
        """Every kept detection (all 18 classes) per image: what NudeNet's detect() returns."""
        return [
            [
                Detection(NUDENET_LABELS[i], float(s), (x, y, w, h))
                for (x, y, w, h), s, i in zip(boxes.tolist(), scores, ids, strict=True)
            ]
            for boxes, scores, ids in self._kept(images)
        ]

    def _kept(self, images: Sequence[Image.Image]) -> list[Kept]:
        kept: list[Kept] = []
        for start in range(0, len(images), self.batch_size):
            kept.extend(self._run_batch(images[start : start + self.batch_size]))
        return kept

    def _run_batch(self, images: Sequence[Image.Image]) -> list[Kept]:
        prepared = [letterbox(image, self.input_size) for image in images]
        if self.rect:
            prepared = [(trim_padding(sq, w, h), w, h) for sq, w, h in prepared]
        blob = to_blob([square for square, _, _ in prepared])
        outputs = self.session.run(None, {self.input_name: blob})[0]
        kept: list[Kept] = []
        for output, (_, width, height) in zip(outputs, prepared, strict=True):
            boxes, scores, ids = decode(output, width, height, self.input_size)
            index = suppress(boxes, scores)
            kept.append((boxes[index], scores[index], ids[index]))
        return kept


SCORE_TYPE = pa.struct([("label", pa.string()), ("score", pa.float32())])


class ExplicitSignal(Signal):
    """``explicit_score`` (max over the exposed classes) and per-class scores of each decoded
    image, one model call per batch."""

    name = "explicit"
    fields = (
        pa.field("explicit_score", pa.float32()),
        pa.field("explicit_classes", pa.list_(SCORE_TYPE)),
    )

    def __init__(self) -> None:
        self._detector: ExplicitDetector | None = None

    def check_available(self) -> None:
        check_screen_models()

    def compute(self, records: Sequence[Record], policy: Policy) -> None:
        decoded = [r for r in records if r.image is not None]
        if not decoded:
            return
        if self._detector is None:
            self._detector = ExplicitDetector()
        images, screened = [], []
        for record in decoded:
            try:
                images.append(bounded_image(record.image.data))
                screened.append(record)
            except UnreadableImage as exc:  # hashed, but too large to screen: review
                record.row["error"] = record.row["error"] or str(exc)
        decoded = screened
        found = self._detector.detect(images)
        for record, result in zip(decoded, found, strict=True):
            record.row["explicit_score"] = result.explicit_score
            record.row["explicit_classes"] = [
                {"label": k, "score": v} for k, v in sorted(result.class_scores.items())
            ]


def bounded_image(data: bytes) -> Image.Image:
    """The image opened for a classifier, its full decode within the decoded-size bound: a
    JPEG over it is draft-decoded near the model's input size, anything else refused."""
    image = open_image(data)
    if limits.decoded_bytes(image.mode, *image.size) > limits.MAX_DECODED_BYTES:
        draft_for_detection(image)
        try:
            limits.check_decoded_size(image.mode, image.size)
        except limits.TooLargeImage as exc:
            raise UnreadableImage(str(exc)) from None
    return image


def check_screen_models() -> None:
    """Fail in one line, before any work, if the screening models cannot be loaded.

    Only imports and file checks: model sessions must be created in each worker, since
    runtime thread pools do not survive the fork that starts local workers.
    """
    from safeset.signals.faces import bundled_age_model
    from safeset.signals.screen_deps import ScreenDependencyError

    try:
        for module in ("onnxruntime", "cv2", "dlib"):
            require(module)
        if not bundled_model_path().is_file():
            raise OSError(str(bundled_model_path()))
        bundled_age_model()
    except ScreenDependencyError as exc:
        raise SafesetError(str(exc)) from None
    except OSError as exc:
        raise SafesetError(f"a screening model file is missing: {exc}") from None
