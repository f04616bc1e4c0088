"""Hostile input, second battery: names that are not UTF-8, sizes declared but not stored,
shapes that make classifiers allocate gigabytes, odd Parquet types, unusable timeouts, and
decoders that run out of time. Each ends as a processed sample, an error row with a precise
reason, or one clear line with a non-zero exit; never a traceback.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from safeset import limits
from safeset.api import scan
from safeset.engines import LocalEngine
from safeset.pipeline import ScanOptions

from . import hostile
from .support import all_rows, run_cli, scan_cli

LAUNCHER = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
err = child.stderr.read()
_, status, usage = os.wait4(child.pid, 0)
sys.stderr.buffer.write(err)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)
"""


def peak_rss_mb(*args: str) -> float:
    """Peak resident memory of ``safeset ARGS``, which must succeed. Measured by a small
    launcher process: a child forked from this test process would count its pages too."""
    result = subprocess.run(
        [sys.executable, "-c", LAUNCHER, sys.executable, "-m", "safeset", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    code, maxrss_kb = result.stdout.split()
    assert code == "0", result.stderr
    assert "Traceback" not in result.stderr
    return int(maxrss_kb) / 1024


def _encoded(fmt: str, size: tuple[int, int] = (160, 120)) -> bytes:
    buf = io.BytesIO()
    hostile.photo(size).save(buf, fmt)
    return buf.getvalue()


def _tar(path: Path, members: list[tuple[str, bytes]], **kw) -> Path:
    with tarfile.open(path, "w", **kw) as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def _md5_list(path: Path, blobs: list[bytes]) -> Path:
    path.write_text("".join(f"md5 {hashlib.md5(b).hexdigest()}\n" for b in blobs))
    return path


def _clean(source: Path, scan_dir: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    result = run_cli("clean", source, "--scan", scan_dir, "--out", out, "-q", *extra)
    assert "Traceback" not in result.stderr
    return result


# -- names that are not UTF-8 ----------------------------------------------------------------

LATIN1 = os.fsdecode(b"caf\xe9")  # "caf\udce9": how Python hands over the byte 0xe9


def test_names_that_are_not_utf8_are_scanned_recorded_and_cleaned(tmp_path: Path) -> None:
    known, other = _encoded("JPEG"), _encoded("PNG")
    shards = tmp_path / "shards"
    shards.mkdir()
    members = [
        (f"{LATIN1}1.jpg", known),
        (f"{LATIN1}1.txt", b"caption"),
        (f"{LATIN1}2.png", other),
    ]
    _tar(shards / "00000.tar", members, format=tarfile.GNU_FORMAT)  # raw bytes in the header
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / f"{LATIN1}.png").write_bytes(other)
    (folder / f"{LATIN1}.txt").write_bytes(b"caption \xff")
    listed = _md5_list(tmp_path / "known.txt", [known])

    for source in (shards, folder):
        scan_dir = tmp_path / f"scan-{source.name}"
        rows = {r["location"]: r for r in scan_cli(scan_dir, source, listed)}
        out = tmp_path / f"clean-{source.name}"
        result = _clean(source, scan_dir, out)
        assert result.returncode == 0, result.stderr
        if source is shards:
            # Recorded with each undecodable byte spelled out; the listed one found and removed.
            assert set(rows) == {"caf\\xe91.jpg", "caf\\xe92.png"}
            assert rows["caf\\xe91.jpg"]["key"] == "caf\\xe91"
            assert rows["caf\\xe91.jpg"]["action"] == "remove"
            assert rows["caf\\xe91.jpg"]["parts"][0]["name"] == "caf\\xe91.txt"
            assert "caf\\xe91" in (scan_dir / "manifest.csv").read_text()
            with tarfile.open(out / "00000.tar") as tf:  # the original name, byte for byte
                assert [(m.name, tf.extractfile(m).read()) for m in tf] == members[2:]
        else:
            assert rows["caf\\xe9.png"]["error"] is None
            assert rows["caf\\xe9.png"]["action"] == "keep"
            assert sorted(os.listdir(os.fsencode(out))) == [b"caf\xe9.png", b"caf\xe9.txt"]
            assert (out / f"{LATIN1}.png").read_bytes() == other


# -- sizes declared, not stored ---------------------------------------------------------------


def test_sparse_tar_member_and_sparse_file_are_too_large(tmp_path: Path) -> None:
    """A GNU sparse member declaring 8 GiB and a 30 GiB sparse file (a few kB on disk each):
    error rows saying so, the rest of the dataset scanned and cleaned as usual."""
    if shutil.which("tar") is None:
        pytest.skip("GNU tar is needed to write a sparse member")
    work = tmp_path / "work"
    work.mkdir()
    (work / "a001.jpg").write_bytes(_encoded("JPEG"))
    with open(work / "a002.png", "wb") as f:
        f.truncate(8 << 30)
    (work / "a003.jpg").write_bytes(_encoded("JPEG"))
    shards = tmp_path / "shards"
    shards.mkdir()
    subprocess.run(
        ["tar", "--sparse", "--format=gnu", "-cf", str(shards / "00000.tar"),
         "a001.jpg", "a002.png", "a003.jpg"],
        cwd=work, check=True,
    )  # fmt: skip
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(_encoded("JPEG"))
    with open(folder / "huge.png", "wb") as f:
        f.truncate(30 << 30)
    listed = _md5_list(tmp_path / "known.txt", [b"not in the data"])

    for source, big, fine in ((shards, "a002", "a001"), (folder, "huge.png", "a.jpg")):
        scan_dir = tmp_path / f"scan-{source.name}"
        rows = {r["key"]: r for r in scan_cli(scan_dir, source, listed)}
        assert rows[big]["error"].startswith("too large: "), rows[big]["error"]
        assert "limit" in rows[big]["error"] and rows[big]["action"] == "review"
        assert rows[fine]["error"] is None
        out = tmp_path / f"clean-{source.name}"
        result = _clean(source, scan_dir, out, "--keep-review")
        assert result.returncode == 0, result.stderr
        assert "(1 unreadable, not copied)" in result.stdout  # never read, so never copied
    with tarfile.open(tmp_path / "clean-shards" / "00000.tar") as tf:
        assert tf.getnames() == ["a001.jpg", "a003.jpg"]
    assert sorted(p.name for p in (tmp_path / "clean-folder").iterdir()) == ["a.jpg"]


def test_a_compressed_member_inflating_past_the_bound_is_too_large(
    tmp_path: Path, known_list: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small .tar.gz whose member inflates beyond the bound (scaled down: a 1 MiB bound and a
    4 MiB member of zeros, as a 3 MB member inflating to 3 GiB is under the real one)."""
    monkeypatch.setattr(limits, "MAX_FILE_BYTES", 1 << 20)
    plain = _tar(
        tmp_path / "plain.tar",
        [("a.png", bytes(4 << 20)), ("b.jpg", _encoded("JPEG")), ("b.txt", b"after it")],
    )
    shards = tmp_path / "shards"
    shards.mkdir()
    with gzip.open(shards / "00000.tar.gz", "wb") as f:
        f.write(plain.read_bytes())
    assert (shards / "00000.tar.gz").stat().st_size < 64 << 10
    out = tmp_path / "scan"
    scan([shards], [known_list], out, engine=LocalEngine(1), progress=False)
    rows = {r["key"]: r for r in all_rows(out)}
    assert rows["a"]["error"] == (
        f"too large: tar member 'a.png' holds {4 << 20:,} bytes (limit {1 << 20:,})"
    )
    assert rows["b"]["error"] is None and rows["b"]["pdq"]


def test_decoded_size_is_bounded_before_decoding(tmp_path: Path, known_list: Path) -> None:
    """A few hundred bytes declaring 9000 x 9000 pixels (324 MB decoded, under the pixel cap):
    refused as too large before any buffer is allocated."""
    folder = tmp_path / "imgs"
    folder.mkdir()
    (folder / "wide.png").write_bytes(hostile.png_with_declared_size(9000, 9000))
    (folder / "fine.png").write_bytes(_encoded("PNG"))
    rows = {r["key"]: r for r in scan_cli(tmp_path / "scan", folder, known_list)}
    need = 9000 * 9000 * 4
    assert rows["wide.png"]["error"] == (
        f"too large: 9000x9000 RGB pixels decode to {need:,} bytes "
        f"(limit {limits.MAX_DECODED_BYTES:,})"
    )
    assert rows["fine.png"]["error"] is None


def test_a_large_image_under_the_bound_hashes_in_bounded_memory(
    tmp_path: Path, known_list: Path
) -> None:
    """A 5000 x 5000 RGBA PNG (100 MB decoded): hashing holds the decoded image and its
    luminance, not float copies of every channel (before: 5.3 times the decoded size above
    the interpreter's own footprint, now 1.7)."""
    big, tiny = tmp_path / "big", tmp_path / "tiny"
    big.mkdir()
    tiny.mkdir()
    hostile_png = hostile.zero_png(5000, 5000)
    (big / "a.png").write_bytes(hostile_png)
    (tiny / "a.png").write_bytes(_encoded("PNG"))
    scan_args = ("--list", known_list, "-q", "--workers", "1")
    base = peak_rss_mb("scan", tiny, "--out", tmp_path / "s-tiny", *scan_args)
    peak = peak_rss_mb("scan", big, "--out", tmp_path / "s-big", *scan_args)
    assert all_rows(tmp_path / "s-big")[0]["error"] is None
    decoded_mb = 5000 * 5000 * 4 / 2**20
    assert peak - base < 3 * decoded_mb, (peak, base)


# -- classifiers on extreme shapes ------------------------------------------------------------


def test_screening_extreme_shapes_stays_in_bounded_memory(tmp_path: Path, known_list: Path) -> None:
    """A 65000 x 1 PNG (a few hundred bytes) made OpenCV ask for 12 GB, a 30000 x 200 JPEG for
    2.8 GB (the letterbox square); both are screened within the usual footprint."""
    pytest.importorskip("nudenet")
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.new("RGB", (65000, 1), (120, 30, 40)).save(folder / "line.png")
    hostile.photo((30000, 200)).save(folder / "wide.jpg", quality=90)
    assert (folder / "line.png").stat().st_size < 1000
    args = ("scan", folder, "--list", known_list, "--out", tmp_path / "scan", "-q")
    peak = peak_rss_mb(*args, "--workers", "1", "--screen")
    rows = {r["key"]: r for r in all_rows(tmp_path / "scan")}
    for name in ("line.png", "wide.jpg"):
        assert rows[name]["error"] is None and rows[name]["explicit_score"] is not None
    assert peak < 2048, peak


# -- odd Parquet types ------------------------------------------------------------------------


def test_hf_image_struct_with_large_binary_bytes_scans_and_cleans(
    tmp_path: Path, known_list: Path
) -> None:
    blobs = [_encoded("JPEG"), _encoded("PNG")]
    struct = pa.struct([("bytes", pa.large_binary()), ("path", pa.string())])
    image = pa.array([{"bytes": b, "path": f"{n}.img"} for n, b in enumerate(blobs)], struct)
    path = tmp_path / "hf" / "train.parquet"
    path.parent.mkdir()
    pq.write_table(pa.table({"image": image}), path)
    rows = scan_cli(tmp_path / "scan", path, known_list)
    assert [(r["error"], r["md5"]) for r in rows] == [
        (None, hashlib.md5(b).hexdigest()) for b in blobs
    ]
    result = _clean(path, tmp_path / "scan", tmp_path / "clean")
    assert result.returncode == 0, result.stderr
    assert pq.read_table(tmp_path / "clean" / "train.parquet").equals(pq.read_table(path))


def test_hf_image_struct_with_string_bytes_is_one_clear_line(
    tmp_path: Path, known_list: Path
) -> None:
    struct = pa.struct([("bytes", pa.string()), ("path", pa.string())])
    path = tmp_path / "train.parquet"
    pq.write_table(pa.table({"image": pa.array([{"bytes": "abc", "path": "a"}], struct)}), path)
    result = run_cli("scan", path, "--list", known_list, "--out", tmp_path / "scan")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"safeset: error: {path}: image column 'image' is a struct whose 'bytes' field holds "
        "string, not binary: write the image bytes as binary (Hugging Face Image() does)"
    )


# -- timeouts ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--timeout", "nan"),
        ("--timeout", "inf"),
        ("--sample-timeout", "nan"),
        ("--sample-timeout", "1e300"),
        ("--sample-timeout", "-1"),
    ],
)
def test_unusable_timeouts_are_one_line_naming_the_flag(
    tmp_path: Path, known_list: Path, flag: str, value: str
) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    (folder / "a.png").write_bytes(_encoded("PNG"))
    result = run_cli("scan", folder, "--list", known_list, "--out", tmp_path / "scan", flag, value)
    assert result.returncode == 2
    assert result.stderr.startswith(f"safeset: error: {flag} ")
    assert "must be more than 0 seconds and at most 86400" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def progressive_jpeg_with_many_scans(scans: int) -> bytes:
    """A valid progressive JPEG whose smallest scan is repeated ``scans`` times: libjpeg only
    warns about the repeats and decodes every one, each a pass over the whole image."""
    buf = io.BytesIO()
    hostile.photo((1024, 1024)).save(buf, "JPEG", progressive=True, quality=90)
    data = buf.getvalue()
    segments, i = [], 2
    while data[i + 1] != 0xD9:  # EOI
        end = i + 2 + int.from_bytes(data[i + 2 : i + 4], "big")
        if data[i + 1] == 0xDA:  # a scan: its entropy-coded data runs to the next marker
            while True:
                end = data.index(b"\xff", end)
                if data[end + 1] == 0 or 0xD0 <= data[end + 1] <= 0xD7:  # stuffing, restarts
                    end += 2
                    continue
                break
        segments.append(data[i:end])
        i = end
    smallest = min((s for s in segments if s[1] == 0xDA), key=len)
    return data[:2] + b"".join(segments) + smallest * scans + b"\xff\xd9"


def test_a_decoder_out_of_time_says_so(tmp_path: Path, known_list: Path) -> None:
    """20,000 scans take seconds to decode: the row says it ran out of time, not that the
    data is truncated or corrupt (decoders' own error handling used to swallow the limit)."""
    folder = tmp_path / "imgs"
    folder.mkdir()
    slow = progressive_jpeg_with_many_scans(20_000)
    assert len(slow) < 1 << 20
    (folder / "slow.jpg").write_bytes(slow)
    (folder / "fine.jpg").write_bytes(_encoded("JPEG"))
    out = tmp_path / "scan"
    options = ScanOptions(sample_timeout=0.25)
    scan([folder], [known_list], out, options=options, engine=LocalEngine(1), progress=False)
    rows = {r["key"]: r for r in all_rows(out)}
    assert rows["slow.jpg"]["error"] == "timed out after 0.25s"
    assert rows["slow.jpg"]["md5"] == hashlib.md5(slow).hexdigest()  # hashed all the same
    assert rows["fine.jpg"]["error"] is None


# -- Parquet row groups of hundreds of megabytes ----------------------------------------------


def test_a_large_parquet_row_group_is_streamed(tmp_path: Path, known_list: Path) -> None:
    """One 200 MB row group (pages of a few images, as image datasets are written): scan and
    clean hold a bounded slice of it, not the row group times 3.7 (scan) or 4.2 (clean) as
    before. pyarrow's defaults write ~200 MB pages for such rows, which any reader must hold
    whole: bench/bench_hostile_memory.py measures both layouts."""
    rng = np.random.default_rng(0)
    size, blob = 200_000_000, 200_000
    blobs = [rng.bytes(blob) for _ in range(size // blob)]
    path = tmp_path / "pq" / "one.parquet"
    path.parent.mkdir()
    table = pa.table({"key": [f"{n:05d}" for n in range(len(blobs))], "jpg": blobs})
    pq.write_table(table, path, row_group_size=len(blobs), write_batch_size=8, use_dictionary=False)
    del table, blobs
    tiny = tmp_path / "tiny.parquet"
    pq.write_table(pa.table({"jpg": [_encoded("PNG")]}), tiny)
    scan_args = ("--list", known_list, "-q", "--workers", "1")
    base = peak_rss_mb("scan", tiny, "--out", tmp_path / "s-tiny", *scan_args)
    scanned = peak_rss_mb("scan", path, "--out", tmp_path / "scan", *scan_args)
    cleaned = peak_rss_mb("clean", path, "--scan", tmp_path / "scan", "--out", tmp_path / "c", "-q")
    assert len(all_rows(tmp_path / "scan")) == size // blob
    assert pq.read_table(tmp_path / "c" / "one.parquet").num_rows == 0  # all unreadable: review
    size_mb = size / 2**20
    assert scanned - base < size_mb, (scanned, base)
    assert cleaned - base < size_mb, (cleaned, base)


def test_a_row_group_broken_part_way_keeps_the_rows_before_the_break(
    tmp_path: Path, known_list: Path
) -> None:
    rng = np.random.default_rng(0)
    blobs = [_encoded("PNG", (16, 16))] + [
        bytes(rng.integers(0, 4, 20_000, dtype=np.uint8)) for _ in range(199)
    ]
    path = tmp_path / "pq" / "part.parquet"
    path.parent.mkdir()
    pq.write_table(
        pa.table({"jpg": blobs}), path, compression="zstd", write_batch_size=4, use_dictionary=False
    )
    data = bytearray(path.read_bytes())
    middle = int(len(data) * 0.6)
    data[middle : middle + 64] = bytes(b ^ 0x5A for b in data[middle : middle + 64])
    path.write_bytes(bytes(data))
    rows = scan_cli(tmp_path / "scan", path, known_list)
    broken = rows[-1]
    first_unread = broken["index"]
    assert 0 < first_unread < 200 and first_unread % 64 == 0  # whole slices came through
    assert broken["location"] == f"row group 0 from row {first_unread}"
    assert broken["error"].startswith("corrupt Parquet row group 0: ")
    assert [r["location"] for r in rows[:-1]] == [f"row {n}" for n in range(first_unread)]
    assert rows[0]["error"] is None
    result = _clean(path, tmp_path / "scan", tmp_path / "clean", "--keep-review")
    assert result.returncode == 0, result.stderr
    assert "(1 unreadable, not copied)" in result.stdout
    assert (
        pq.read_table(tmp_path / "clean" / "part.parquet").column("jpg").to_pylist()
        == (blobs[:first_unread])
    )
