"""Turning a sample's evidence into an action (remove / review / keep) with readable reasons.

The default policy, and why:

- a hash-list match -> remove: the list's programme has confirmed the image;
- explicit content together with any minor indicator (an apparent age under ``minor_age``, or a
  minor term in the caption or URL) -> remove, reason ``explicit+minor-indicators``, and a
  warning that such samples may be illegal material: never open them, report them;
- explicit content alone -> remove: general-purpose training sets should not contain it;
- a sexual and a minor term together in the caption, without explicit pixels -> review;
- an unreadable sample -> review (invariant 4: never silently kept or dropped).

The strongest action any rule calls for wins; every rule that fired is listed as a reason.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from safeset.errors import SafesetError
from safeset.lists.allow import cancelled_by
from safeset.matching.matcher import Match
from safeset.signals.terms import DEFAULT_MINOR_TERMS, DEFAULT_SEXUAL_TERMS, TermList


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
    """Everything known about one sample that a rule may look at."""

    matches: Sequence[Match] = ()
    error: str | None = None
    explicit_score: float | None = None  # None: not screened
    ages: Sequence[float] = ()  # apparent ages of the faces found
    sexual_terms: Sequence[str] = ()
    minor_terms: Sequence[str] = ()


@dataclass(frozen=True)
class Decision:
    action: Action
    reasons: tuple[str, ...]

    @property
    def may_be_illegal(self) -> bool:
        return EXPLICIT_MINOR_REASON in self.reasons


@dataclass(frozen=True)
class Actions:
    hash_match: Action = Action.REMOVE
    explicit_and_minor: Action = Action.REMOVE
    explicit: Action = Action.REMOVE
    caption_sexual_and_minor: Action = Action.REVIEW
    unreadable: Action = Action.REVIEW


@dataclass(frozen=True)
class Thresholds:
    # On 939 benign natural-photo crops NudeNet reached 0.5 twice and 0.6 never
    # (bench/bench_screen.py); see signals.explicit.DEFAULT_REVIEW_THRESHOLD.
    explicit: float = 0.6
    # Apparent-age models err by 5-8 years on adults; a high cut-off errs towards protection.
    minor_age: float = 25.0


@dataclass(frozen=True)
class Terms:
    sexual: tuple[str, ...] = DEFAULT_SEXUAL_TERMS
    minor: tuple[str, ...] = DEFAULT_MINOR_TERMS

    def lists(self) -> tuple[TermList, TermList]:
        return TermList("sexual", self.sexual), TermList("minor", self.minor)


def match_reason(m: Match) -> str:
    variant = f":v{m.variant}" if m.variant else ""
    return f"hash:{m.list_name}:{m.signal_type}:d={m.distance}{variant}"


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
class Policy:
    actions: Actions = field(default_factory=Actions)
    thresholds: Thresholds = field(default_factory=Thresholds)
    terms: Terms = field(default_factory=Terms)
    # Classifier screening (explicit content, faces and ages); caption terms always run.
    screen: bool = False

    def decide(self, ev: Evidence) -> Decision:
        fired = hash_rules(ev.matches, self.actions.hash_match)
        fired += self._content_rules(ev)
        if ev.error:
            fired.append((self.actions.unreadable, f"error:{ev.error}"))
        if not fired:
            return Decision(Action.KEEP, ())
        action = max((a for a, _ in fired), key=lambda a: a.severity)
        return Decision(action, tuple(r for _, r in fired))

    def _content_rules(self, ev: Evidence) -> list[tuple[Action, str]]:
        explicit = ev.explicit_score is not None and ev.explicit_score >= self.thresholds.explicit
        young = [a for a in ev.ages if a < self.thresholds.minor_age]
        indicators = [f"minor-face:age={a:.0f}" for a in young]
        indicators += [f"caption-term:minor:{t}" for t in ev.minor_terms]
        sexual = [f"caption-term:sexual:{t}" for t in ev.sexual_terms]
        if explicit:
            score = f"explicit:{ev.explicit_score:.2f}"
            if indicators:
                rule = self.actions.explicit_and_minor
                return [(rule, EXPLICIT_MINOR_REASON), (rule, score)] + [
                    (rule, r) for r in indicators + sexual
                ]
            return [(self.actions.explicit, score)] + [(self.actions.explicit, r) for r in sexual]
        if sexual and ev.minor_terms:
            rule = self.actions.caption_sexual_and_minor
            return [(rule, r) for r in sexual + [f"caption-term:minor:{t}" for t in ev.minor_terms]]
        return []

    def describe(self) -> dict[str, Any]:
        """The effective policy as plain data (job identity, ``policy show``)."""
        return {
            "screen": self.screen,
            "actions": {k: v.value for k, v in asdict(self.actions).items()},
            "thresholds": asdict(self.thresholds),
            "terms": {k: list(v) for k, v in asdict(self.terms).items()},
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
        return replace(
            policy,
            screen=screen,
            actions=_section(policy.actions, data.get("actions", {}), where, "actions", _action),
            thresholds=_section(
                policy.thresholds, data.get("thresholds", {}), where, "thresholds", _number
            ),
            terms=_section(policy.terms, data.get("terms", {}), where, "terms", _terms),
        )

    def to_toml(self) -> str:
        d = self.describe()
        out = ["# safeset policy (effective)", f"screen = {str(d['screen']).lower()}", ""]
        out += ["[actions]"] + [f'{k} = "{v}"' for k, v in d["actions"].items()] + [""]
        out += ["[thresholds]"] + [f"{k} = {v}" for k, v in d["thresholds"].items()] + [""]
        out += ["[terms]"]
        for name, terms in d["terms"].items():
            out.append(f"{name} = [{', '.join(_quote(t) for t in terms)}]")
        return "\n".join(out) + "\n"


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _section(default, given: Any, where: str, name: str, convert):
    if not isinstance(given, dict):
        raise SafesetError(f"{where}: [{name}] must be a table")
    known = {f.name for f in fields(default)}
    unknown = sorted(set(given) - known)
    if unknown:
        raise SafesetError(
            f"{where}: unknown key {name}.{unknown[0]} (known: {', '.join(sorted(known))})"
        )
    return replace(default, **{k: convert(v, f"{where}: {name}.{k}") for k, v in given.items()})


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
