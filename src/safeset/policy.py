"""Turning a sample's evidence into an action (remove / review / keep) with readable reasons.

The default policy, and why:

- a hash-list match -> remove: the list's programme has confirmed the image;
- explicit content together with any minor indicator (an apparent age under ``minor_age``, or a
  minor term in the caption or URL) -> remove, reason ``explicit+minor-indicators``, and a
  warning that such samples may be illegal material: never open them, report them;
- explicit content alone -> remove: general-purpose training sets should not contain it;
- a sexual and a minor term together in the caption, without explicit pixels -> review;
- an unreadable sample -> review (invariant 4: never silently kept or dropped).

The strongest action any rule calls for wins; every rule that fired is listed as a reason. Each
rule is a ``Rule`` naming the result columns (signals) it reads; a new signal brings its rule
with ``register_rule`` and its action is then set in a policy file like any other.
"""

from __future__ import annotations

import tomllib
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

from safeset.errors import SafesetError
from safeset.lists.allow import cancelled_by
from safeset.matching.matcher import Match
from safeset.signals.terms import DEFAULT_MINOR_TERMS, DEFAULT_SEXUAL_TERMS


class Action(StrEnum):
    KEEP = "keep"
    REVIEW = "review"
    REMOVE = "remove"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]


_SEVERITY = {Action.KEEP: 0, Action.REVIEW: 1, Action.REMOVE: 2}
FLAGGED = frozenset({Action.REVIEW, Action.REMOVE})
EXPLICIT_MINOR_REASON = "explicit+minor-indicators"


@dataclass(frozen=True)
class Evidence:
    """Everything known about one sample that a rule may look at: its result row (every
    signal's columns, by name) and its matches."""

    row: Mapping[str, Any] = field(default_factory=dict)
    matches: Sequence[Match] = ()

    def get(self, column: str, default: Any = None) -> Any:
        value = self.row.get(column)
        return default if value is None else value


@dataclass(frozen=True)
class Decision:
    action: Action
    reasons: tuple[str, ...]

    @property
    def may_be_illegal(self) -> bool:
        return EXPLICIT_MINOR_REASON in self.reasons


class Rule(ABC):
    """One way evidence turns into an action: the policy's ``[actions]`` key ``name`` says
    which action (``default`` unless a policy file says otherwise) when it fires."""

    name: ClassVar[str]
    default: ClassVar[Action]
    #: The result columns (signals) it reads, for ``policy show`` and for the curious.
    reads: ClassVar[tuple[str, ...]] = ()
    #: The thresholds it reads, with their defaults (the policy's ``[thresholds]`` keys).
    thresholds: ClassVar[Mapping[str, float]] = {}

    @abstractmethod
    def reasons(self, ev: Evidence, policy: Policy) -> list[str]:
        """Why it fires on ``ev`` (empty: it does not)."""

    def fired(self, ev: Evidence, policy: Policy, action: Action) -> list[tuple[Action, str]]:
        """Each reason with the action it calls for: the rule's own, unless it says otherwise."""
        return [(action, reason) for reason in self.reasons(ev, policy)]


def match_reason(m: Match) -> str:
    variant = f":v{m.variant}" if m.variant else ""
    # A hash the sample's metadata recorded for its original file (signals.recorded).
    recorded = "(recorded)" if m.part.startswith("recorded:") else ""
    return f"hash:{m.list_name}:{m.signal_type}{recorded}:d={m.distance}{variant}"


class HashMatch(Rule):
    name = "hash_match"
    default = Action.REMOVE
    reads = ("matches",)

    def reasons(self, ev: Evidence, policy: Policy) -> list[str]:
        return [reason for _, reason in hash_rules(ev.matches, self.default)]

    def fired(self, ev: Evidence, policy: Policy, action: Action) -> list[tuple[Action, str]]:
        return hash_rules(ev.matches, action)


def hash_rules(matches: Sequence[Match], default: Action) -> list[tuple[Action, str]]:
    """What the hash matches call for: each block match its list's action (else ``default``),
    unless an allow-list match cancels it (see safeset.lists.allow)."""
    fired: list[tuple[Action, str]] = []
    for m in matches:
        if m.role == "allow":
            continue
        allow = cancelled_by(m, matches)
        if allow is None:
            fired.append((Action(m.action) if m.action else default, match_reason(m)))
        else:
            fired.append((Action.KEEP, f"allowed:{allow.list_name}:entry {allow.entry}"))
            fired.append((Action.KEEP, f"cancelled:{match_reason(m)}"))
    return list(dict.fromkeys(fired))


@dataclass(frozen=True)
class _Content:
    """What the screening signals say about a sample, as the content rules weigh it."""

    explicit: str | None  # "explicit:0.91" when the score reaches the threshold
    indicators: list[str]  # minor indicators: young faces, minor terms
    sexual: list[str]
    minor_terms: list[str]

    @classmethod
    def of(cls, ev: Evidence, policy: Policy) -> _Content:
        score = ev.get("explicit_score")
        explicit = score is not None and score >= policy.thresholds["explicit"]
        young = [f["age"] for f in ev.get("faces", ()) if f["age"] < policy.thresholds["minor_age"]]
        minor = [f"caption-term:minor:{t}" for t in ev.get("minor_terms", ())]
        return cls(
            f"explicit:{score:.2f}" if explicit else None,
            [f"minor-face:age={a:.0f}" for a in young] + minor,
            [f"caption-term:sexual:{t}" for t in ev.get("sexual_terms", ())],
            minor,
        )


#: Thresholds the content rules read, with their defaults and why.
CONTENT_THRESHOLDS = {
    # On 939 benign natural-photo crops NudeNet reached 0.5 twice and 0.6 never
    # (bench/bench_screen.py); see signals.explicit.DEFAULT_REVIEW_THRESHOLD.
    "explicit": 0.6,
    # Apparent-age models err by 5-8 years on adults; a high cut-off errs towards protection.
    "minor_age": 25.0,
}


class ExplicitAndMinor(Rule):
    name = "explicit_and_minor"
    default = Action.REMOVE
    reads = ("explicit_score", "faces", "minor_terms", "sexual_terms")
    thresholds = CONTENT_THRESHOLDS

    def reasons(self, ev: Evidence, policy: Policy) -> list[str]:
        c = _Content.of(ev, policy)
        if c.explicit and c.indicators:
            return [EXPLICIT_MINOR_REASON, c.explicit, *c.indicators, *c.sexual]
        return []


class Explicit(Rule):
    name = "explicit"
    default = Action.REMOVE
    reads = ("explicit_score", "sexual_terms")
    thresholds = CONTENT_THRESHOLDS

    def reasons(self, ev: Evidence, policy: Policy) -> list[str]:
        c = _Content.of(ev, policy)
        return [c.explicit, *c.sexual] if c.explicit and not c.indicators else []


class CaptionSexualAndMinor(Rule):
    name = "caption_sexual_and_minor"
    default = Action.REVIEW
    reads = ("sexual_terms", "minor_terms", "explicit_score")
    thresholds = CONTENT_THRESHOLDS

    def reasons(self, ev: Evidence, policy: Policy) -> list[str]:
        c = _Content.of(ev, policy)
        return [*c.sexual, *c.minor_terms] if not c.explicit and c.sexual and c.minor_terms else []


class Unreadable(Rule):
    name = "unreadable"
    default = Action.REVIEW
    reads = ("error",)

    def reasons(self, ev: Evidence, policy: Policy) -> list[str]:
        error = ev.get("error")
        return [f"error:{error}"] if error else []


#: The rules every policy applies, in the order their reasons are listed (the provenance
#: rules join them at the end of this module).
RULES: list[Rule] = [
    HashMatch(),
    ExplicitAndMinor(),
    Explicit(),
    CaptionSexualAndMinor(),
    Unreadable(),
]


def register_rule(rule: Rule) -> Rule:
    """Add a rule (a new signal's, say) to every policy; its action is configurable by name."""
    RULES[:] = [r for r in RULES if r.name != rule.name] + [rule]
    return rule


@dataclass(frozen=True)
class Terms:
    sexual: tuple[str, ...] = DEFAULT_SEXUAL_TERMS
    minor: tuple[str, ...] = DEFAULT_MINOR_TERMS


def _default_actions() -> dict[str, Action]:
    return {rule.name: rule.default for rule in RULES}


def _default_thresholds() -> dict[str, float]:
    return {k: v for rule in RULES for k, v in rule.thresholds.items()}


@dataclass(frozen=True)
class Policy:
    actions: Mapping[str, Action] = field(default_factory=_default_actions)
    thresholds: Mapping[str, float] = field(default_factory=_default_thresholds)
    terms: Terms = field(default_factory=Terms)
    # Classifier screening (explicit content, faces and ages, caption terms).
    screen: bool = False

    def decide(self, ev: Evidence) -> Decision:
        fired = [
            pair
            for rule in RULES
            for pair in rule.fired(ev, self, self.actions.get(rule.name, rule.default))
        ]
        if not fired:
            return Decision(Action.KEEP, ())
        action = max((a for a, _ in fired), key=lambda a: a.severity)
        # Two rules may give one reason (explicit+minor-indicators): it is listed once.
        return Decision(action, tuple(dict.fromkeys(r for _, r in fired)))

    def describe(self) -> dict[str, Any]:
        """The effective policy as plain data (job identity, ``policy show``)."""
        return {
            "screen": self.screen,
            "actions": {
                rule.name: self.actions.get(rule.name, rule.default).value for rule in RULES
            },
            "thresholds": dict(self.thresholds),
            "terms": {"sexual": list(self.terms.sexual), "minor": list(self.terms.minor)},
        }

    @classmethod
    def load(cls, path: Path) -> Policy:
        """A policy file (TOML) over the defaults: only what it names changes."""
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise SafesetError(f"cannot read policy {path}: {exc.strerror or exc}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise SafesetError(f"policy {path}: not valid TOML: {exc}") from None
        return cls.from_dict(data, str(path))

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "policy") -> Policy:
        unknown = set(data) - {"screen", "actions", "thresholds", "terms"}
        if unknown:
            raise SafesetError(f"{where}: unknown section {sorted(unknown)[0]!r}")
        policy = cls()
        screen = data.get("screen", policy.screen)
        if not isinstance(screen, bool):
            raise SafesetError(f"{where}: screen must be true or false")
        terms = _section(asdict(policy.terms), data.get("terms", {}), where, "terms", _terms)
        return replace(
            policy,
            screen=screen,
            actions=_section(policy.actions, data.get("actions", {}), where, "actions", _action),
            thresholds=_section(
                policy.thresholds, data.get("thresholds", {}), where, "thresholds", _number
            ),
            terms=Terms(**terms),
        )

    def to_toml(self) -> str:
        d = self.describe()
        out = ["# safeset policy (effective)", f"screen = {str(d['screen']).lower()}", ""]
        reads = {rule.name: ", ".join(rule.reads) for rule in RULES}
        out += ["[actions]"]
        out += [f'{k} = "{v}"  # reads: {reads[k]}' for k, v in d["actions"].items()] + [""]
        out += ["[thresholds]"] + [f"{k} = {v}" for k, v in d["thresholds"].items()] + [""]
        out += ["[terms]"]
        for name, terms in d["terms"].items():
            out.append(f"{name} = [{', '.join(_quote(t) for t in terms)}]")
        return "\n".join(out) + "\n"


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _section(default: Mapping[str, Any], given: Any, where: str, name: str, convert) -> dict:
    if not isinstance(given, dict):
        raise SafesetError(f"{where}: [{name}] must be a table")
    unknown = sorted(set(given) - set(default))
    if unknown:
        raise SafesetError(
            f"{where}: unknown key {name}.{unknown[0]} (known: {', '.join(sorted(default))})"
        )
    return dict(default) | {k: convert(v, f"{where}: {name}.{k}") for k, v in given.items()}


def _action(value: Any, where: str) -> Action:
    try:
        return Action(str(value).lower())
    except ValueError:
        raise SafesetError(f"{where} must be remove, review or keep, not {value!r}") from None


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SafesetError(f"{where} must be a number, not {value!r}")
    return float(value)


def _terms(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(t, str) and t.strip() for t in value):
        raise SafesetError(f"{where} must be a list of non-empty strings")
    return tuple(t.strip().lower() for t in value)


def _provenance_rules() -> None:
    # Imported here, not at the top: they are written against Rule, defined above.
    from safeset.provenance.rules import PROVENANCE_RULES

    RULES.extend(PROVENANCE_RULES)


_provenance_rules()
