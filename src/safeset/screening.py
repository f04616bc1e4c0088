"""Content screening for what no hash list knows: explicit content, faces with apparent ages,
caption and URL terms. Enabled by the policy (``--screen``).

The models load once per worker process, on first use, and faces are only looked for where the
explicit score reaches the policy's threshold: they can change the decision there (explicit
alone vs explicit with a minor indicator) and nowhere else, so most samples never pay for them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

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


def screen_image(data: bytes, policy: Policy) -> ScreenResult:
    """Explicit-content scores, then faces and ages only where they can change the decision."""
    (explicit,) = _explicit_detector().detect([open_image(data)])
    result = ScreenResult(explicit.explicit_score, dict(explicit.class_scores))
    if explicit.explicit_score >= policy.thresholds.explicit:
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
    return result
