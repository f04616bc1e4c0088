"""Names from a dataset as text that can be stored, printed and compared.

File and tar member names are bytes; Python hands the ones that are not UTF-8 over as strings
with lone surrogates (``surrogateescape``), which Parquet, CSV and terminals refuse
(``UnicodeEncodeError``). Readers keep the original string (it is what finds the file again);
whatever is recorded or shown goes through ``printable``, which spells each undecodable byte
as ``\\xNN``. It is deterministic, so a clean compares a source's names with the recorded ones
through it too.
"""

from __future__ import annotations

from typing import Any

_ROW_TEXT = ("key", "source", "location", "url", "error")


def printable(text: str) -> str:
    """``text`` with every lone surrogate spelled out (``\\xNN`` for an undecodable byte)."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return "".join(_spelled(c) for c in text)


def _spelled(char: str) -> str:
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8, as surrogateescape keeps it
        return f"\\x{code - 0xDC00:02x}"
    if 0xD800 <= code <= 0xDFFF:  # any other lone surrogate (e.g. a JSON "\ud800")
        return f"\\u{code:04x}"
    return char


def printable_row(row: dict[str, Any]) -> None:
    """Make a result row's dataset-given text storable, in place."""
    for name in _ROW_TEXT:
        if isinstance(row.get(name), str):
            row[name] = printable(row[name])
    for part in row.get("parts") or ():
        part["name"] = printable(part["name"])
    for match in row.get("matches") or ():
        if isinstance(match.get("part"), str):
            match["part"] = printable(match["part"])
    if isinstance(row.get("reasons"), list):
        row["reasons"] = [printable(r) for r in row["reasons"]]
