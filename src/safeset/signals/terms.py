"""Caption and URL terms: configurable word lists matched case-insensitively on word boundaries.

The default lists are short on purpose: they are indicators that only act together with other
evidence (see the policy), and users with better lists pass their own.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from typing import TYPE_CHECKING

import pyarrow as pa

from safeset.signals.content import Signal

if TYPE_CHECKING:
    from safeset.pipeline import Record
    from safeset.policy import Policy

# Words that say a caption describes sexual content.
DEFAULT_SEXUAL_TERMS = (
    "nude",
    "nudes",
    "naked",
    "nsfw",
    "porn",
    "porno",
    "pornographic",
    "xxx",
    "sex",
    "sexy",
    "explicit",
    "topless",
    "erotic",
    "hentai",
    "lewd",
    "onlyfans",
)
# Words that say a caption describes a child. Broad by design ("girl", "boy" also describe
# adults): a minor term acts only together with explicit content or a sexual term.
DEFAULT_MINOR_TERMS = (
    "child",
    "children",
    "kid",
    "kids",
    "minor",
    "minors",
    "underage",
    "teen",
    "teens",
    "teenager",
    "preteen",
    "pre-teen",
    "young girl",
    "young boy",
    "little girl",
    "little boy",
    "schoolgirl",
    "schoolboy",
    "toddler",
    "infant",
    "baby",
    "loli",
    "lolita",
    "shota",
    "jailbait",
)


@dataclass(frozen=True)
class TermList:
    name: str
    terms: tuple[str, ...]

    @cached_property
    def _pattern(self) -> re.Pattern[str] | None:
        if not self.terms:
            return None
        alternatives = "|".join(re.escape(t) for t in sorted(self.terms, key=len, reverse=True))
        # \b on both sides: "kid" must not fire inside "kidney"; separators in URLs count.
        return re.compile(rf"(?<![^\W_])(?:{alternatives})(?![^\W_])", re.IGNORECASE)

    def find(self, *texts: str | None) -> tuple[str, ...]:
        """The distinct terms present in any of ``texts``, lowercased, in first-seen order."""
        if self._pattern is None:
            return ()
        found: dict[str, None] = {}
        for text in texts:
            if text:
                for m in self._pattern.finditer(text):
                    found[m.group(0).lower()] = None
        return tuple(found)


@cache
def _term_lists(sexual: tuple[str, ...], minor: tuple[str, ...]) -> tuple[TermList, TermList]:
    return TermList("sexual", sexual), TermList("minor", minor)


class TermsSignal(Signal):
    """Sexual and minor terms (the policy's word lists) in the caption, a metadata caption and
    the URL of each sample."""

    name = "terms"
    fields = (
        pa.field("sexual_terms", pa.list_(pa.string())),
        pa.field("minor_terms", pa.list_(pa.string())),
    )

    def compute(self, records: Sequence[Record], policy: Policy) -> None:
        sexual, minor = _term_lists(policy.terms.sexual, policy.terms.minor)
        for record in records:
            sample = record.sample
            meta_caption = sample.meta.get("caption") if isinstance(sample.meta, dict) else None
            texts = (
                sample.caption,
                meta_caption if isinstance(meta_caption, str) else None,
                sample.url,
            )
            record.row["sexual_terms"] = list(sexual.find(*texts))
            record.row["minor_terms"] = list(minor.find(*texts))
