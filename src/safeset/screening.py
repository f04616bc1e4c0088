"""Content screening for what no hash list knows: explicit content, faces with apparent ages,
caption and URL terms. Enabled by the policy (``--screen``).

The models load once per worker process, on first use, and faces are only looked for where the
explicit score reaches the policy's threshold: they can change the decision there (explicit
alone vs explicit with a minor indicator) and nowhere else, so most samples never pay for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from safeset.errors import SafesetError
from safeset.policy import Policy
from safeset.sample import Sample
from safeset.signals.image import open_image
from safeset.signals.terms import TermList


@dataclass
class ScreenResult:
    explicit_score: float | None = None
    explicit_classes: dict[str, float] = field(default_factory=dict)
    faces: list[dict[str, Any]] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        return {
            "explicit_score": self.explicit_score,
            "explicit_classes": [
                {"label": k, "score": v} for k, v in sorted(self.explicit_classes.items())
            ],
            "faces": self.faces,
        }


@cache
def _explicit_detector():
    from safeset.signals.explicit import ExplicitDetector

    return ExplicitDetector()


@cache
def _face_estimator():
    from safeset.signals.faces import FaceAgeEstimator

    return FaceAgeEstimator()


@cache
def _term_lists(sexual: tuple[str, ...], minor: tuple[str, ...]) -> tuple[TermList, TermList]:
    return TermList("sexual", sexual), TermList("minor", minor)


def caption_terms(sample: Sample, policy: Policy) -> dict[str, list[str]]:
    """Sexual and minor terms in the sample's caption, metadata caption and URL."""
    sexual, minor = _term_lists(policy.terms.sexual, policy.terms.minor)
    meta_caption = sample.meta.get("caption") if isinstance(sample.meta, dict) else None
    texts = (sample.caption, meta_caption if isinstance(meta_caption, str) else None, sample.url)
    return {"sexual_terms": list(sexual.find(*texts)), "minor_terms": list(minor.find(*texts))}


def screen_images(datas: Sequence[bytes], policy: Policy) -> list[ScreenResult]:
    """Explicit-content scores for a batch of decodable images (one model call), then faces
    and ages for those whose score can make a minor indicator matter."""
    results = [
        ScreenResult(found.explicit_score, dict(found.class_scores))
        for found in _explicit_detector().detect([open_image(d) for d in datas])
    ]
    for data, result in zip(datas, results, strict=True):
        if (
            result.explicit_score is not None
            and result.explicit_score >= policy.thresholds.explicit
        ):
            result.faces = [
                {
                    "x": f.box[0],
                    "y": f.box[1],
                    "w": f.box[2],
                    "h": f.box[3],
                    "age": f.age,
                    "score": f.score,
                }
                for f in _face_estimator().faces(open_image(data))
            ]
    return results


def check_available() -> None:
    """Fail before any work, in one line, if the screening models cannot be loaded.

    Only imports and file checks: model sessions must be created in each worker, since
    runtime thread pools do not survive the fork that starts local workers.
    """
    from safeset.signals.explicit import bundled_model_path
    from safeset.signals.faces import bundled_age_model
    from safeset.signals.screen_deps import ScreenDependencyError, require

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
