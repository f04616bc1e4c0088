"""Shard patterns in webdataset's own notation: ``part-{00000..00099}.tar``, ``{a,b}.tar``.

webdataset expands a URL with ``braceexpand`` (bash's brace expansion: numeric ranges keep
their zero padding, lists are taken in order); safeset expands a SOURCE the same way, so the
string a training script gives ``wds.WebDataset`` is the string ``safeset scan`` takes.
"""

from __future__ import annotations

from pathlib import Path

from braceexpand import braceexpand

from safeset.errors import SafesetError


def expand_pattern(arg: str) -> list[Path] | None:
    """The files a brace pattern names, in its order; None when ``arg`` is no brace pattern.
    Every file it names must exist: a shard missing from a pattern is an error, not a gap."""
    if "{" not in arg or "}" not in arg:
        return None
    names = list(braceexpand(arg))
    if names == [arg]:
        return None
    missing = [n for n in names if not Path(n).is_file()]
    if missing:
        raise SafesetError(
            f"source not found: {missing[0]} ({len(missing)} of the {len(names)} files the "
            f"pattern {arg} names are missing)"
        )
    return [Path(n) for n in dict.fromkeys(names)]
