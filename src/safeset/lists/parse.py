"""Reading the hash-list dialects in use, one entry at a time.

Dialects, detected from the first meaningful line:

- ThreatExchange CSV as ``threatexchange dataset -P --csv`` writes it: a header naming at least
  ``signal_type`` and ``signal_str`` (plus ``collab``, ``category``, ``tags``); without a header,
  ``signal_type,signal_str[,collab,category,tags]``.
- ThreatExchange file-exchange lines: ``TYPE HASH``.
- One bare hash a line, the type given by the caller (``--list pdq:FILE``).

Blank lines and ``#`` comments are skipped; BOM and CRLF are tolerated; hex is case-insensitive.
Errors name the file and line but never echo the line: list contents are sensitive.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from safeset.errors import SafesetError
from safeset.signal_types import FOREIGN_TYPES, SignalType, lookup

# ThreatExchange opinion categories saying an entry is *not* what the collaboration is about.
NEGATIVE_CATEGORIES = frozenset({"false_positive", "negative_class", "does_not_fit_category"})


@dataclass(frozen=True)
class Entry:
    signal_type: type[SignalType]
    value: bytes
    line: int


@dataclass(frozen=True)
class Skipped:
    """An entry deliberately not loaded, and why (counted, never shown)."""

    reason: str
    line: int


def read_entries(path: Path, declared: type[SignalType] | None) -> Iterator[Entry | Skipped]:
    """Yield every entry of a list file in order; raise SafesetError on the first bad line."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            yield from _read(path, _numbered_lines(path, f), declared)
    except OSError as exc:
        raise SafesetError(f"cannot read hash list {path}: {exc.strerror or exc}") from None


def _numbered_lines(path: Path, f) -> Iterator[tuple[int, str]]:
    lineno = 0
    try:
        for lineno, raw in enumerate(f, start=1):
            line = raw.strip()
            if line and not line.startswith("#"):
                yield lineno, line
    except UnicodeDecodeError:
        raise SafesetError(f"{path}:{lineno + 1}: not UTF-8 text") from None


def _read(path: Path, lines: Iterator[tuple[int, str]], declared: type[SignalType] | None):
    first = next(lines, None)
    if first is None:
        return
    lineno, line = first
    if declared is not None:
        parse = _bare_parser(declared)
    elif "," in line:
        parse, header = _csv_parser(path, lineno, line)
        if header:
            first = None
    elif len(line.split()) == 2:
        parse = _typed_line
    else:
        raise SafesetError(
            f"{path}:{lineno}: one hash a line needs its type: --list pdq:{path} "
            "(or md5:, sha1:, sha256:)"
        )
    if first is not None:
        yield _entry(path, lineno, parse, line)
    for lineno, line in lines:
        yield _entry(path, lineno, parse, line)


def _entry(path: Path, lineno: int, parse, line: str) -> Entry | Skipped:
    try:
        return parse(lineno, line)
    except ValueError as exc:
        raise SafesetError(f"{path}:{lineno}: {exc}") from None


def _bare_parser(declared: type[SignalType]):
    def parse(lineno: int, line: str) -> Entry:
        if len(line.split()) != 1:
            raise ValueError(f"expected one {declared.name} hash a line")
        return Entry(declared, declared.parse(line.lower()), lineno)

    return parse


def _typed(lineno: int, type_name: str, value: str) -> Entry | Skipped:
    signal_type = lookup(type_name)
    if signal_type is not None:
        return Entry(signal_type, signal_type.parse(value.strip().lower()), lineno)
    name = type_name.strip().lower()
    if name in FOREIGN_TYPES:
        return Skipped(f"unsupported type {name}", lineno)
    # Type names are not sensitive; they are what the user needs to see to fix the file.
    raise ValueError(f"unknown signal type {type_name.strip()[:40]!r}")


def _typed_line(lineno: int, line: str) -> Entry | Skipped:
    parts = line.split()
    if len(parts) != 2:
        raise ValueError("expected 'TYPE HASH'")
    return _typed(lineno, parts[0], parts[1])


def _csv_parser(path: Path, lineno: int, line: str):
    """A CSV row parser and whether ``line`` was a header."""
    fields = [f.strip().lower() for f in next(csv.reader([line]))]
    if "signal_type" in fields and "signal_str" in fields:
        t_col, v_col = fields.index("signal_type"), fields.index("signal_str")
        c_col = fields.index("category") if "category" in fields else None
        header = True
    else:
        t_col, v_col, c_col, header = 0, 1, 3, False
    width = max(t_col, v_col) + 1

    def parse(lineno: int, line: str) -> Entry | Skipped:
        row = next(csv.reader([line]))
        if len(row) < width:
            raise ValueError(f"expected at least {width} comma-separated fields, got {len(row)}")
        if c_col is not None and c_col < len(row) and _is_negative(row[c_col]):
            return Skipped("marked false positive", lineno)
        return _typed(lineno, row[t_col], row[v_col])

    return parse, header


def _is_negative(category: str) -> bool:
    return category.strip().lower().rsplit(".", 1)[-1] in NEGATIVE_CATEGORIES
