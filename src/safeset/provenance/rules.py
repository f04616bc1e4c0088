"""What provenance means for a sample's action: the policy rules that read its columns.

Defaults (each overridable by name in a policy file's ``[actions]``, with ``face_swap`` among
its ``[thresholds]``):

- synthetic or face-swapped + explicit + a minor indicator -> remove
  (``synthetic_explicit_minor``), reasons ``synthetic+explicit+minor-indicators`` and
  ``explicit+minor-indicators``, so the may-be-illegal warning and reporting guidance follow,
  with the note that synthetic abuse imagery is illegal in many jurisdictions;
- face swap suspected (score >= ``thresholds.face_swap`` on a face of 256 px or more) +
  explicit -> remove (``face_swap_explicit``, reason ``face-swap+explicit``: likely
  non-consensual intimate imagery);
- synthetic alone -> keep (``synthetic``), tagged ``synthetic:<evidence>`` and counted;
- face swap suspected alone -> keep (``face_swap``), tagged ``face-swap-suspected:<score>``;
- an embedded opt-out -> remove (``opt_out``, reason ``opt-out:<where>``).

"Explicit" is ``explicit_score >= thresholds.explicit`` or, for a generated image, a sexual
term in its own prompt (what the generator was asked for). Minor indicators: an apparent age
under ``thresholds.minor_age``, a minor term in the caption or the prompt.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from safeset.policy import CONTENT_THRESHOLDS, EXPLICIT_MINOR_REASON, Action, Evidence, Rule
from safeset.provenance.faceswap import DEFAULT_THRESHOLD

if TYPE_CHECKING:
    from safeset.policy import Policy

SYNTHETIC_EXPLICIT_MINOR_REASON = "synthetic+explicit+minor-indicators"
SYNTHETIC_ABUSE_WARNING = (
    "Synthetic or manipulated sexual imagery of minors is illegal in many jurisdictions, as "
    "photographs are (e.g. the UK, Canada, Australia and most EU member states; US federal "
    "law covers obscene computer-generated depictions)."
)
PROVENANCE_THRESHOLDS = {**CONTENT_THRESHOLDS, "face_swap": DEFAULT_THRESHOLD}
PROVENANCE_COLUMNS = (
    "synthetic_evidence",
    "face_swap_max",
    "prompt_sexual_terms",
    "prompt_minor_terms",
    "opt_out",
    "explicit_score",
    "faces",
    "minor_terms",
)


def classify(row: Mapping[str, Any], thresholds: Mapping[str, float]) -> list[tuple[str, str]]:
    """(rule name, reason) for every provenance reason a merged result row gives."""
    fired: list[tuple[str, str]] = []
    synthetic = list(row.get("synthetic_evidence") or [])
    swap = row.get("face_swap_max")
    swapped = swap is not None and swap >= thresholds["face_swap"]
    score = row.get("explicit_score")
    prompt_sexual = list(row.get("prompt_sexual_terms") or []) if synthetic else []
    explicit = (score is not None and score >= thresholds["explicit"]) or bool(prompt_sexual)
    ages = [f.get("age") for f in row.get("faces") or [] if f.get("age") is not None]
    minor = [f"minor-face:age={a:.0f}" for a in ages if a < thresholds["minor_age"]]
    minor += [f"caption-term:minor:{t}" for t in row.get("minor_terms") or []]
    minor += [f"prompt-term:minor:{t}" for t in row.get("prompt_minor_terms") or []]
    if (synthetic or swapped) and explicit and minor:
        rule = SyntheticExplicitMinor.name
        fired += [(rule, SYNTHETIC_EXPLICIT_MINOR_REASON), (rule, EXPLICIT_MINOR_REASON)]
        fired += [(rule, r) for r in minor]
        fired += [(rule, f"prompt-term:sexual:{t}") for t in prompt_sexual]
    elif swapped and explicit:
        fired.append((FaceSwapExplicit.name, "face-swap+explicit"))
    fired += [(Synthetic.name, f"synthetic:{e}") for e in synthetic]
    if swapped:
        fired.append((FaceSwap.name, f"face-swap-suspected:{swap:.2f}"))
    fired += [(OptOut.name, f"opt-out:{r}") for r in row.get("opt_out") or []]
    return fired


class _ProvenanceRule(Rule):
    reads: ClassVar[tuple[str, ...]] = PROVENANCE_COLUMNS
    thresholds: ClassVar[Mapping[str, float]] = PROVENANCE_THRESHOLDS

    def reasons(self, ev: Evidence, policy: Policy) -> list[str]:
        if "synthetic_evidence" not in ev.row:
            return []  # not a provenance scan
        return [r for rule, r in classify(ev.row, policy.thresholds) if rule == self.name]


class SyntheticExplicitMinor(_ProvenanceRule):
    name = "synthetic_explicit_minor"
    default = Action.REMOVE


class FaceSwapExplicit(_ProvenanceRule):
    name = "face_swap_explicit"
    default = Action.REMOVE


class Synthetic(_ProvenanceRule):
    name = "synthetic"
    default = Action.KEEP


class FaceSwap(_ProvenanceRule):
    name = "face_swap"
    default = Action.KEEP


class OptOut(_ProvenanceRule):
    name = "opt_out"
    default = Action.REMOVE


PROVENANCE_RULES = [SyntheticExplicitMinor(), FaceSwapExplicit(), Synthetic(), FaceSwap(), OptOut()]


def provenance_rules(row: Mapping[str, Any], policy: Policy | None = None) -> list[tuple[str, str]]:
    """``(action, reason)`` pairs the provenance rules give one merged result row."""
    from safeset.policy import Policy

    policy = policy or Policy()
    defaults = {rule.name: rule.default for rule in PROVENANCE_RULES}
    return [
        (policy.actions.get(rule, defaults[rule]).value, reason)
        for rule, reason in classify(row, policy.thresholds)
    ]
