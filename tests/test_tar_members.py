"""The tar reader parses plain headers itself: it must read every archive exactly as tarfile
does (members, names, sizes, bytes, headers, errors), whoever wrote it and however it is cut."""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from safeset.formats import tar_members
from safeset.formats.tar_members import BadEnd, read_members


def reference(path: Path) -> tuple[list[tuple], str | None]:
    """What tarfile itself reads: (name, kind, size, bytes, header) per member, then the error
    (or None), with safeset's one addition: bytes after the end must be zeros."""
    members: list[tuple] = []
    try:
        with tarfile.open(path, "r:*") as tf:
            for info in tf:
                kind = "file" if info.isfile() else "dir" if info.isdir() else "other"
                data = tf.extractfile(info).read() if kind == "file" else None
                members.append((info.name, kind, info.size, data, _header(info)))
            tf.fileobj.seek(tf.offset)
            if tf.fileobj.read().strip(b"\0"):
                return members, "bad end"
    except (tarfile.TarError, EOFError, OSError) as exc:
        return members, type(exc).__name__
    return members, None


def ours(path: Path) -> tuple[list[tuple], str | None]:
    members: list[tuple] = []
    try:
        for member, read in read_members(path):
            data = read()
            members.append((member.name, member.kind, member.size, data, _header(member.tarinfo())))
    except BadEnd:
        return members, "bad end"
    except (tarfile.TarError, EOFError, OSError) as exc:
        return members, type(exc).__name__
    return members, None


def _header(info: tarfile.TarInfo) -> dict:
    fields = info.get_info()
    fields.pop("chksum", None)  # tarfile recomputes it when writing
    return fields | {"pax": dict(info.pax_headers)}


def _archive(path: Path, fmt: int, members: list[tuple[str, bytes | None, bytes]]) -> Path:
    with tarfile.open(path, "w", format=fmt) as tf:
        for name, data, kind in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.mtime, info.uid, info.gid, info.uname = 1_700_000_000, 1000, 1000, "alice"
            if kind == tarfile.SYMTYPE:
                info.linkname = "elsewhere.jpg"
            if data is not None:
                info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


MEMBERS = [
    ("000000001.jpg", b"\xff\xd8\xff" + b"x" * 1000, tarfile.REGTYPE),
    ("000000001.txt", b"a caption", tarfile.REGTYPE),
    ("000000002.jpg", b"y" * 512, tarfile.REGTYPE),  # a whole number of blocks
    ("000000002.json", b"", tarfile.REGTYPE),
    ("folder", None, tarfile.DIRTYPE),
    (
        "folder/" + "n" * 60 + "/" + "m" * 60 + ".jpg",
        b"long",
        tarfile.REGTYPE,
    ),  # ustar prefix / long name
    ("café/ünïcode.jpg", b"pax header", tarfile.REGTYPE),
    ("link.jpg", None, tarfile.SYMTYPE),
    ("000000003.jpg", b"z" * 700, tarfile.REGTYPE),
]


@pytest.mark.parametrize(
    "fmt",
    [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT],
    ids=["ustar", "gnu", "pax"],
)
def test_archives_written_by_tarfile_read_the_same(tmp_path: Path, fmt: int) -> None:
    members = MEMBERS if fmt != tarfile.USTAR_FORMAT else [m for m in MEMBERS if "é" not in m[0]]
    path = _archive(tmp_path / "a.tar", fmt, members)
    expected = reference(path)
    assert expected[1] is None and len(expected[0]) == len(members)
    assert ours(path) == expected


@pytest.mark.skipif(shutil.which("tar") is None, reason="no tar command")
@pytest.mark.parametrize("fmt", ["gnu", "ustar", "pax", "v7", "oldgnu"])
def test_archives_written_by_gnu_tar_read_the_same(tmp_path: Path, fmt: int) -> None:
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    for n in range(3):
        (folder / f"{n:09d}.jpg").write_bytes(bytes([n]) * (300 + 400 * n))
        (folder / f"{n:09d}.txt").write_text(f"caption {n}")
    (folder / "sub" / ("d" * 90 + ".jpg")).write_bytes(b"deep")
    (folder / "alias.jpg").symlink_to("000000000.jpg")
    path = tmp_path / "a.tar"
    subprocess.run(
        ["tar", f"--format={fmt}", "-cf", str(path), "-C", str(folder), "."],
        check=True,
        capture_output=True,
    )
    expected = reference(path)
    assert expected[1] is None and len(expected[0]) >= 9
    assert ours(path) == expected


def test_every_cut_of_an_archive_reads_as_tarfile_reads_it(tmp_path: Path) -> None:
    """Cut at every byte where it changes anything: the same complete members, and an error
    exactly where tarfile (with the end check) has one."""
    whole = _archive(tmp_path / "whole.tar", tarfile.PAX_FORMAT, MEMBERS).read_bytes()
    cut = tmp_path / "cut.tar"
    blocks = [b + d for b in range(0, len(whole) + 1, 512) for d in (-1, 0, 1)]
    cuts = sorted({*range(0, len(whole), 7), *blocks} & set(range(len(whole))))
    for size in cuts:
        cut.write_bytes(whole[:size])
        assert ours(cut) == reference(cut), f"cut at byte {size}"


def test_damaged_headers_are_left_to_tarfile(tmp_path: Path) -> None:
    """A bad checksum, letters in a number field, a base-256 size: tarfile decides."""
    whole = bytearray(
        _archive(tmp_path / "whole.tar", tarfile.USTAR_FORMAT, MEMBERS[:4]).read_bytes()
    )
    second = 512 + 1024  # the second member's header: after the first (1,003 bytes of data)
    damages = {
        "checksum": (second + 148, b"0000000\0"),
        "mode letters": (second + 100, b"00x0644\0"),
        "signed size": (second + 124, b"+0000000011\0"),
        "base-256 size": (second + 124, b"\x80" + bytes(10) + b"\x09"),
        "garbage": (second, b"\x07" * 512),
    }
    for label, (offset, patch) in damages.items():
        damaged = bytearray(whole)
        damaged[offset : offset + len(patch)] = patch
        path = tmp_path / f"{label}.tar"
        path.write_bytes(bytes(damaged))
        assert ours(path) == reference(path), label


def test_trailing_garbage_after_the_end_is_an_error(tmp_path: Path) -> None:
    path = _archive(tmp_path / "a.tar", tarfile.GNU_FORMAT, MEMBERS[:2])
    path.write_bytes(path.read_bytes() + b"not a header")
    members, error = ours(path)
    assert error == "bad end" and len(members) == 2


@pytest.mark.parametrize("suffix, mode", [(".tar.gz", "w:gz"), (".tar.xz", "w:xz")])
def test_compressed_archives_are_read_by_tarfile(tmp_path: Path, suffix: str, mode: str) -> None:
    path = tmp_path / f"a{suffix}"
    with tarfile.open(path, mode) as tf:
        for name, data, _ in MEMBERS[:4]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    assert ours(path) == reference(path)
    assert len(ours(path)[0]) == 4


def test_files_over_the_size_bound_are_skipped_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _archive(tmp_path / "a.tar", tarfile.GNU_FORMAT, MEMBERS[:3])
    monkeypatch.setattr(tar_members.limits, "MAX_FILE_BYTES", 600)
    read = [(m.name, m.size, data) for m, load in read_members(path) for data in [load()]]
    assert read == [
        ("000000001.jpg", 1003, None),
        ("000000001.txt", 9, b"a caption"),
        ("000000002.jpg", 512, b"y" * 512),
    ]
