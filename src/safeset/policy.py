"""Turning a sample's matches and errors into an action, with human-readable reasons."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from safeset.matching.matcher import Match


class Action(StrEnum):
    KEEP = "keep"
    REVIEW = "review"
    REMOVE = "remove"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]


_SEVERITY = {Action.KEEP: 0, Action.REVIEW: 1, Action.REMOVE: 2}
FLAGGED = frozenset({Action.REVIEW, Action.REMOVE})


@dataclass(frozen=True)
class Decision:
    action: Action
    reasons: tuple[str, ...]


def match_reason(m: Match) -> str:
    variant = f":v{m.variant}" if m.variant else ""
    return f"hash:{m.list_name}:{m.signal_type}:d={m.distance}{variant}"


@dataclass(frozen=True)
class Policy:
    """Which action each kind of evidence calls for; the strongest action triggered wins."""

    on_hash_match: Action = Action.REMOVE
    # Invariant 4: an unreadable sample is never silently kept or dropped.
    on_error: Action = Action.REVIEW

    def decide(self, matches: Sequence[Match], error: str | None) -> Decision:
        triggered: list[tuple[Action, str]] = [
            (self.on_hash_match, match_reason(m)) for m in matches
        ]
        if error:
            triggered.append((self.on_error, f"error:{error}"))
        if not triggered:
            return Decision(Action.KEEP, ())
        action = max((a for a, _ in triggered), key=lambda a: a.severity)
        return Decision(action, tuple(r for _, r in triggered))

    def describe(self) -> dict[str, str]:
        return {"on_hash_match": self.on_hash_match.value, "on_error": self.on_error.value}
