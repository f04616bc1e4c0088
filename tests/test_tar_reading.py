"""Reading tar shards through a memory map gives what tarfile's own extractfile() gives.

The reference below is the straightforward reading (``extractfile(member).read()`` for every
regular member); the shards are written with tarfile itself, in every format it writes, plain
and compressed, whole and cut short.
"""

from __future__ import annotations

import gzip
import io
import tarfile
import zlib
from pathlib import Path

import pytest

from safeset.formats.webdataset import iter_groups


def reference(path: Path) -> list[tuple[str, int, bytes | None]] | str:
    """(name, type, bytes) of every non-directory member, or the error class that ends it."""
    out: list[tuple[str, int, bytes | None]] = []
    try:
        with tarfile.open(path, mode="r:*") as tf:
            for member in tf:
                if member.isdir():
                    continue
                data = None
                if member.isfile():
                    f = tf.extractfile(member)
                    data = f.read() if f else b""
                out.append((member.name, member.type, data))
    except (tarfile.TarError, EOFError, OSError, ValueError, zlib.error):
        out.append(("<error>", 0, None))
    return out


def ours(path: Path) -> list[tuple[str, int, bytes | None]]:
    out: list[tuple[str, int, bytes | None]] = []
    for group in iter_groups(path):
        out += [(m.name, m.type, d) for m, d in zip(group.members, group.data, strict=True)]
        if group.problem and group.problem.startswith("corrupt or truncated tar"):
            out.append(("<error>", 0, None))
    return out


def write_tar(path: Path, fmt: int, mode: str = "w") -> Path:
    members = [
        ("000.jpg", b"\xff\xd8" + bytes(range(256)) * 40),
        ("000.txt", b"a caption"),
        ("001.jpg", b""),  # empty member
        ("d" * 150 + "/002.jpg", b"long name" * 100),  # needs GNU or PAX long names
        ("003.json", '{"u": "\u00e9"}'.encode()),
    ]
    with tarfile.open(path, mode, format=fmt) as tf:
        folder = tarfile.TarInfo("folder")
        folder.type = tarfile.DIRTYPE
        tf.addfile(folder)
        for name, blob in members:
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            if fmt == tarfile.PAX_FORMAT:
                info.pax_headers = {"comment": "x" * 30}
            tf.addfile(info, io.BytesIO(blob))
        link = tarfile.TarInfo("004.jpg")
        link.type = tarfile.SYMTYPE
        link.linkname = "000.jpg"
        tf.addfile(link)
    return path


FORMATS = [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("mode", ["w", "w:gz", "w:bz2", "w:xz"])
def test_whole_shards_read_alike(tmp_path: Path, fmt: int, mode: str) -> None:
    path = write_tar(tmp_path / "s.tar", fmt, mode)
    expected = reference(path)
    assert ours(path) == expected
    assert any(d for _, _, d in expected)  # the shard does hold data


@pytest.mark.parametrize("fmt", FORMATS)
def test_shards_cut_short_read_alike(tmp_path: Path, fmt: int) -> None:
    blob = write_tar(tmp_path / "whole.tar", fmt).read_bytes()
    cut = tmp_path / "cut.tar"
    for size in [*range(0, len(blob), 97), len(blob) - 1, len(blob) - 1024]:
        cut.write_bytes(blob[:size])
        assert ours(cut) == reference(cut), size


def test_misnamed_compressed_shard_is_decompressed(tmp_path: Path) -> None:
    plain = write_tar(tmp_path / "plain.tar", tarfile.GNU_FORMAT)
    misnamed = tmp_path / "really-gzip.tar"
    misnamed.write_bytes(gzip.compress(plain.read_bytes()))
    assert ours(misnamed) == reference(plain)
