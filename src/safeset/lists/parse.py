"""Reading the hash-list dialects in use, in blocks of lines.

Dialects, detected from the first meaningful line:

- ThreatExchange CSV as ``threatexchange dataset -P --csv`` writes it: a header naming at least
  ``signal_type`` and ``signal_str`` (plus ``collab``, ``category``, ``tags``); without a header,
  ``signal_type,signal_str[,collab,category,tags]``.
- ThreatExchange file-exchange lines: ``TYPE HASH``, and ``threatexchange dataset -P`` without
  ``--csv``: ``TYPE HASH 'COLLAB' CATEGORY [TAGS]`` (``'COLLAB'`` absent with one ``-c``).
- One bare hash a line, the type given by the caller (``--list pdq:FILE``), optionally
  followed by a file name as md5sum and sha256sum print them (``HASH  NAME``).

Types that are not image signals (``video_md5``, ``url``, ``raw_text``, whatever ThreatExchange
adds next) are skipped and counted by name, in every dialect: a type token is only reported when
it looks like a type name, never when it could be list content (a hash in the type column).
Entries whose category says they are not what the collaboration is about (``NEGATIVE_CLASS``,
``FALSE_POSITIVE``) are skipped and counted too.

Blank lines and ``#`` comments are skipped; BOM and CRLF are tolerated; hex is case-insensitive.
Errors name the file and line but never echo the line: list contents are sensitive.

Lists reach tens of millions of lines, so each block is parsed in bulk (split, group by type,
one ``bytes.fromhex`` per type); only a block that fails is re-read line by line, to name the
first bad line exactly.
"""

from __future__ import annotations

import csv
import itertools
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from safeset.errors import SafesetError
from safeset.signals import HashType as SignalType
from safeset.signals import lookup

# ThreatExchange opinion categories saying an entry is *not* what the collaboration is about.
NEGATIVE_CATEGORIES = frozenset({"false_positive", "negative_class", "does_not_fit_category"})
BLOCK_LINES = 1 << 16  # about 4 MB of text for a PDQ list

Line = tuple[int, str]
# One line's meaning: (signal type, hex) to load, or a reason it is skipped.
Parsed = tuple[type[SignalType], str] | str
LineParser = Callable[[str], Parsed]
# A whole block's lines as (type token, hex, marked negative); ValueError/IndexError if malformed.
BulkSplitter = Callable[[list[str]], list[tuple[str, str, bool]]]


@dataclass(frozen=True)
class Dialect:
    line: LineParser  # exact, with a precise reason for a bad line
    bulk: BulkSplitter  # fast, for the common case of a block without any bad line
    header: bool = False
    csv: bool = False  # a quoted field may span lines (a raw_text signal with a line break)


@dataclass
class Block:
    """Entries of consecutive lines, grouped by signal type name."""

    values: dict[str, bytes] = field(default_factory=dict)
    lines: dict[str, list[int]] = field(default_factory=dict)
    skipped: Counter[str] = field(default_factory=Counter)


def read_blocks(path: Path, declared: type[SignalType] | None) -> Iterator[Block]:
    """Every entry of a list file, in order, block by block; SafesetError on the first bad line."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            chunks = _line_chunks(path, f)
            first_chunk = next(chunks, [])
            if not first_chunk:
                return
            dialect = _dialect(path, first_chunk[0], declared)
            if dialect.header:
                first_chunk = first_chunk[1:]
            blocks = itertools.chain([first_chunk], chunks)
            for chunk in _csv_records(blocks) if dialect.csv else blocks:
                if chunk:
                    yield _parse_block(path, chunk, dialect)
    except OSError as exc:
        raise SafesetError(f"cannot read hash list {path}: {exc.strerror or exc}") from None


def _csv_records(chunks: Iterator[list[Line]]) -> Iterator[list[Line]]:
    """Lines joined into CSV records: a line that leaves a quote open continues on the next
    (csv.writer quotes a field holding a line break), numbered by its first line."""
    pending: list[Line] = []
    for chunk in chunks:
        if not pending and '"' not in "".join(text for _, text in chunk):
            yield chunk  # the usual case, checked in one pass
            continue
        records: list[Line] = []
        for lineno, text in chunk:
            if pending:
                pending.append((lineno, text))
                if sum(t.count('"') for _, t in pending) % 2 == 0:
                    records.append((pending[0][0], "\n".join(t for _, t in pending)))
                    pending = []
            elif text.count('"') % 2:
                pending = [(lineno, text)]
            else:
                records.append((lineno, text))
        yield records
    if pending:  # a quote open to the end: parsed as it is, so its line is the one named
        yield [(pending[0][0], "\n".join(t for _, t in pending))]


def _line_chunks(path: Path, f: TextIO) -> Iterator[list[Line]]:
    """Numbered non-blank, non-comment lines, BLOCK_LINES raw lines at a time."""
    lineno = 1
    try:
        while raw := f.readlines(BLOCK_LINES * 80):
            stripped = (text.strip() for text in raw)
            yield [
                (n, text)
                for n, text in enumerate(stripped, start=lineno)
                if text and text[0] != "#"
            ]
            lineno += len(raw)
    except UnicodeDecodeError:
        raise SafesetError(f"{path}:{_first_undecodable_line(path)}: not UTF-8 text") from None


def _first_undecodable_line(path: Path) -> int:
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return lineno
    return 0  # pragma: no cover - only called after a decode error


def _dialect(path: Path, first: Line, declared: type[SignalType] | None) -> Dialect:
    lineno, line = first
    if declared is not None:
        return _bare_dialect(declared)
    if "," in line:
        return _csv_dialect(line)
    if len(line.split()) >= 2:
        return Dialect(_typed_line, _typed_bulk)
    raise SafesetError(
        f"{path}:{lineno}: one hash a line needs its type: --list pdq:{path} "
        "(or md5:, sha1:, sha256:)"
    )


def _parse_block(path: Path, block: list[Line], dialect: Dialect) -> Block:
    try:
        return _bulk(block, dialect.bulk)
    except (ValueError, IndexError):
        pass
    for lineno, line in block:  # slow path: find and name the first bad line
        try:
            parsed = dialect.line(line)
            if not isinstance(parsed, str):
                parsed[0].parse(parsed[1])
        except ValueError as exc:
            raise SafesetError(f"{path}:{lineno}: {exc}") from None
    raise AssertionError("a block failed in bulk but every line parses")  # pragma: no cover


def _bulk(block: list[Line], split: BulkSplitter) -> Block:
    out = Block()
    rows = split([line for _, line in block])
    # Resolve each distinct type token once rather than once a line.
    resolved = {token: _typed(token) for token in {t for t, _, _ in rows}}
    kinds = [
        "marked false positive" if negative else resolved[token] for token, _, negative in rows
    ]
    hexes: dict[type[SignalType], list[str]] = {}
    for kind in dict.fromkeys(kinds):
        picked = [i for i, k in enumerate(kinds) if k is kind]
        if isinstance(kind, str):
            out.skipped[kind] += len(picked)
        else:
            hexes[kind] = [rows[i][1] for i in picked]
            out.lines[kind.name] = [block[i][0] for i in picked]
    for signal_type, values in hexes.items():
        width = 2 * signal_type.nbytes
        if any(len(v) != width for v in values):
            raise ValueError("wrong length")
        # fromhex would skip whitespace inside a value; splitting made that impossible.
        out.values[signal_type.name] = bytes.fromhex("".join(values))
    return out


def _bare_dialect(declared: type[SignalType]) -> Dialect:
    """One hash a line, or ``HASH  NAME`` as md5sum and sha256sum print them (NAME ignored)."""

    def line(text: str) -> Parsed:
        return declared, text.split(None, 1)[0]

    def bulk(lines: list[str]) -> list[tuple[str, str, bool]]:
        return [(declared.name, text.split(None, 1)[0], False) for text in lines]

    return Dialect(line, bulk)


def _with_value(kind: type[SignalType] | str, value: str) -> Parsed:
    return kind if isinstance(kind, str) else (kind, value.strip())


def _typed(type_name: str) -> type[SignalType] | str:
    """The signal type a token names, or why its entries are skipped; ValueError if unknown."""
    signal_type = lookup(type_name)
    if signal_type is not None:
        return signal_type
    if not looks_like_type_name(type_name.strip()):
        # Most likely a hash where the type should be (md5sum output, "HASH TYPE" lines): the
        # token is list content and must not be echoed.
        raise ValueError(
            "the type field holds no signal type name (is it a hash? for one hash a line, "
            "or md5sum-style lines, give the type: --list md5:FILE)"
        )
    # Any other type name is one safeset has no use for (video, url, text...): skipped and
    # counted rather than rejected, so exports load as they are whatever types they carry.
    # Type names are not sensitive; they are what the user needs to see.
    return f"unsupported type {type_name.strip()}"


_TYPE_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
_HEX_TOKEN = re.compile(r"[0-9a-f]+")


def looks_like_type_name(token: str) -> bool:
    """Whether ``token`` could be a signal type's name rather than a value: a short lowercase
    identifier, as ThreatExchange names them, that is not all hex digits (so never a hex hash,
    and hardly ever a base64 one, whose letters are mixed case)."""
    return bool(_TYPE_NAME.fullmatch(token)) and not _HEX_TOKEN.fullmatch(token)


# What ``threatexchange dataset -P`` prints after ``TYPE HASH``: the collaboration's repr (absent
# when one collaboration was asked for), then the opinion category and its tags.
_TX_METADATA = re.compile(r"""(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")?\s*([A-Z][A-Z_]*)(?:\s.*)?""")


def _metadata_negative(rest: str) -> bool:
    """Whether the text after ``TYPE HASH`` marks the entry negative; ValueError if it is not
    the metadata ``threatexchange dataset -P`` prints."""
    found = _TX_METADATA.fullmatch(rest)
    if found is None:
        raise ValueError(
            "expected 'TYPE HASH', or 'TYPE HASH 'COLLAB' CATEGORY' as threatexchange dataset "
            "prints it"
        )
    return _is_negative(found.group(1))


def _typed_line(line: str) -> Parsed:
    parts = line.split(None, 2)
    if len(parts) < 2:
        raise ValueError("expected 'TYPE HASH'")
    kind = _typed(parts[0])
    if isinstance(kind, str):
        return kind  # the value of a skipped type may hold spaces (raw_text): not looked at
    if len(parts) == 3 and _metadata_negative(parts[2]):
        return "marked false positive"
    return _with_value(kind, parts[1])


def _typed_bulk(lines: list[str]) -> list[tuple[str, str, bool]]:
    rows = []
    for text in lines:
        parts = text.split(None, 2)
        negative = len(parts) == 3 and lookup(parts[0]) is not None and _metadata_negative(parts[2])
        rows.append((parts[0], parts[1], negative))
    return rows


def _csv_dialect(line: str) -> Dialect:
    """CSV with or without the ThreatExchange header (``line`` is the first line)."""
    fields = [f.strip().lower() for f in _csv_row(line)]
    if "signal_type" in fields and "signal_str" in fields:
        t_col, v_col = fields.index("signal_type"), fields.index("signal_str")
        c_col = fields.index("category") if "category" in fields else None
        header = True
    else:
        t_col, v_col, c_col, header = 0, 1, 3, False
    width = max(t_col, v_col) + 1

    def negative(row: list[str]) -> bool:
        return c_col is not None and c_col < len(row) and _is_negative(row[c_col])

    def parse(line: str) -> Parsed:
        row = _csv_row(line)
        if len(row) < width:
            raise ValueError(f"expected at least {width} comma-separated fields, got {len(row)}")
        if negative(row):
            return "marked false positive"
        return _with_value(_typed(row[t_col]), row[v_col])

    def bulk(lines: list[str]) -> list[tuple[str, str, bool]]:
        return [(row[t_col], row[v_col].strip(), negative(row)) for row in csv.reader(lines)]

    return Dialect(parse, bulk, header, csv=True)


def _csv_row(line: str) -> list[str]:
    return next(csv.reader([line]), [])


def _is_negative(category: str) -> bool:
    return category.strip().lower().rsplit(".", 1)[-1] in NEGATIVE_CATEGORIES
