"""Reading a tar's members in order: plain headers parsed here, everything else by ``tarfile``.

WebDataset shards are almost always a run of plain ustar headers of small regular files
(``tarfile`` or GNU tar writing ``KEY.jpg``, ``KEY.txt``, ``KEY.json``). ``tarfile`` decodes
every field of every header into a ``TarInfo``, a dozen conversions that made reading a scan's
costliest step after hashing (bench/bench_tar.py has the figures). Here such a header is
checked as ``tarfile`` checks it (checksum, every number field) and only its name, type and
size are decoded; its 512 bytes are kept, and ``Member.tarinfo`` runs ``tarfile``'s own parser
on them when a cleaned copy needs the whole header.

The first header that is anything else (pax or GNU long-name headers, links, sparse files,
base-256 or signed numbers, a checksum only tarfile's signed sum accepts, a short read) is
handed to ``tarfile``, which reads the rest of the archive from there: every tar variant, and
every error, keeps ``tarfile``'s reading. Compressed archives are read by ``tarfile`` whole.
"""

from __future__ import annotations

import functools
import re
import sys
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from safeset import limits

BLOCK = tarfile.BLOCKSIZE
# What ``tarfile.open`` decodes names with by default: a name must read the same both ways.
ENCODING = sys.getfilesystemencoding()
ERRORS = "surrogateescape"
_PLAIN_TYPES = (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE)
_OCTAL_CHARACTERS = b"01234567 \0"
_SPACED_DIGITS = re.compile(rb"[0-7] +[0-7]")
_COMPRESSED = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")
_ZERO_BLOCK = bytes(BLOCK)
_READ_BUFFER = 1 << 20


@dataclass(frozen=True)
class Member:
    """One tar member as a sample needs it: its name, what it is, its declared size, and its
    header, to write it again."""

    name: str
    size: int
    kind: str  # "file", "dir" or "other" (links, devices, fifos)
    header: bytes | tarfile.TarInfo

    def tarinfo(self) -> tarfile.TarInfo:
        """The member's header as ``tarfile`` reads it."""
        if isinstance(self.header, tarfile.TarInfo):
            return self.header
        return tarfile.TarInfo.frombuf(self.header, ENCODING, ERRORS)


class BadEnd(tarfile.ReadError):
    """Every member was read, but what follows the last one is not the end of an archive."""


def read_members(path: Path) -> Iterator[tuple[Member, Callable[[], bytes | None]]]:
    """Each member, and how to read its bytes: call it before asking for the next member (a
    sample ends where the next key begins, so it is whole before a later member's bytes can
    fail). The bytes are None for anything but a file, and for a file over the size bound
    (skipped unread). Raises ``tarfile.ReadError`` (``BadEnd`` after the last member) or a
    decompressor's error where the archive is broken."""
    with open(path, "rb", buffering=_READ_BUFFER) as f:
        if f.peek(6)[:6].startswith(_COMPRESSED):
            yield from _tarfile_members(f, 0, "r:*")
            return
        while True:
            start = f.tell()
            header = f.read(BLOCK)
            member = _plain(header)
            if member is None:
                if header == _ZERO_BLOCK:
                    _check_end(f, start)
                else:
                    yield from _tarfile_members(f, start, "r:" if start else "r:*")
                return
            read = _Once(f, member)
            yield member, read
            if not read.done:
                read()
            _next_header(f, start, member)


class _Once:
    """Reads one plain member's bytes."""

    __slots__ = ("done", "f", "member")

    def __init__(self, f: BinaryIO, member: Member) -> None:
        self.f, self.member, self.done = f, member, False

    def __call__(self) -> bytes | None:
        self.done = True
        return _data(self.f, self.member)


def _plain(header: bytes) -> Member | None:
    """The member of a plain header of a regular file or a directory, if it is one."""
    if len(header) != BLOCK or header[156:157] not in _PLAIN_TYPES:
        return None
    # Number fields that tarfile reads without error and as these octal digits: only digits,
    # spaces and NULs, and no space between two digits.
    numbers = header[100:156] + b"\0" + header[329:345]
    if numbers.translate(None, _OCTAL_CHARACTERS) or _SPACED_DIGITS.search(numbers):
        return None
    size, checksum = _octal(header[124:136]), _octal(header[148:156])
    # The unsigned sum of the header with its checksum field read as spaces.
    if checksum != sum(header) - sum(header[148:156]) + 8 * 32:
        return None
    # As TarInfo.frombuf and _proc_builtin build the name.
    name = header[:100].split(b"\0", 1)[0].decode(ENCODING, ERRORS)
    is_dir = header[156:157] == tarfile.DIRTYPE or (
        header[156:157] == tarfile.AREGTYPE and name.endswith("/")
    )
    if is_dir:
        name = name.rstrip("/")
    prefix = header[345:500].split(b"\0", 1)[0]
    if prefix:  # ustar's second half of a long name
        name = f"{prefix.decode(ENCODING, ERRORS)}/{name}"
        name = name.rstrip("/") if is_dir else name
    return Member(name, size, "dir" if is_dir else "file", header)


def _octal(field: bytes) -> int:
    """A number field that passed the checks in ``_plain``, read as tarfile reads it."""
    return int(field.split(b"\0", 1)[0].strip() or b"0", 8)


def _data(f: BinaryIO, member: Member) -> bytes | None:
    """A file member's bytes; None for a directory or a file over the size bound (never
    read)."""
    if member.kind == "dir" or member.size > limits.MAX_FILE_BYTES:
        return None
    data = f.read(member.size)
    if len(data) != member.size:
        raise tarfile.ReadError("unexpected end of data")
    return data


def _next_header(f: BinaryIO, start: int, member: Member) -> None:
    """Move past a member's data and its padding to the next header; as ``tarfile`` does, an
    archive cut inside the padding is cut short (a directory's size is not skipped)."""
    if member.kind == "dir" or not member.size:
        return
    f.seek(start + BLOCK + -(-member.size // BLOCK) * BLOCK - 1)
    if not f.read(1):
        raise tarfile.ReadError("unexpected end of data")


def _check_end(f: BinaryIO, offset: int) -> None:
    """What follows the first zero block must be nothing but zeros: ``tarfile`` also ends,
    silently, at a header cut short."""
    f.seek(offset)
    while chunk := f.read(1 << 16):
        if chunk.strip(b"\0"):
            raise BadEnd(f"incomplete member header at byte {offset}")


def _tarfile_members(
    f: BinaryIO, offset: int, mode: str
) -> Iterator[tuple[Member, Callable[[], bytes | None]]]:
    """The members from ``offset`` on, as ``tarfile`` reads them."""
    f.seek(offset)
    with tarfile.open(fileobj=f, mode=mode) as tf:
        for info in tf:
            kind = "file" if info.isfile() else "dir" if info.isdir() else "other"
            yield Member(info.name, info.size, kind, info), functools.partial(_extract, tf, info)
        # The decompressed stream where there is one, else the file itself.
        _check_end(tf.fileobj, tf.offset)


def _extract(tf: tarfile.TarFile, info: tarfile.TarInfo) -> bytes | None:
    if not info.isfile() or info.size > limits.MAX_FILE_BYTES:
        return None
    extracted = tf.extractfile(info)
    return extracted.read() if extracted else b""
