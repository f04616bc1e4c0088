"""Allow lists: entries known to be false positives, which cancel block-list matches.

Trust-and-safety teams keep "negative banks" of images that a programme's perceptual hash
matched by accident (facebook/ThreatExchange#1873). An allow-list match cancels a block-list
match only on the same stored file of the sample, and only where it is at least as strong
evidence: a PDQ allow entry cancels PDQ block matches but never an exact (md5, sha*) one, since
a perceptual near-miss says nothing about a file that is byte-identical to a known one; an exact
allow entry (this very file is known benign) cancels any match on that file.
"""

from __future__ import annotations

from collections.abc import Sequence

from safeset.matching.matcher import Match
from safeset.signals import hash_type


def cancels(allow: Match, block: Match) -> bool:
    """Whether the allow-list match ``allow`` cancels the block-list match ``block``."""
    if allow.role != "allow" or block.role == "allow" or allow.part != block.part:
        return False
    if allow.cancels and block.list_name not in allow.cancels:
        return False
    exact_allow = not hash_type(allow.signal_type).perceptual()
    return exact_allow or allow.signal_type == block.signal_type


def cancelled_by(block: Match, matches: Sequence[Match]) -> Match | None:
    """The closest allow-list match among ``matches`` that cancels ``block``, if any."""
    found = [m for m in matches if cancels(m, block)]
    return min(found, key=lambda m: (m.distance, m.list_name, m.entry)) if found else None
