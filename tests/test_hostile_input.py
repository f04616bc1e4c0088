"""Hostile input never crashes a scan, never loses a sample, never escapes the output folder."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import safeset
from safeset.api import scan
from safeset.errors import SafesetError
from safeset.examples import ExampleSet
from safeset.formats import open_source
from safeset.formats.webdataset import TarShard
from safeset.pipeline import ScanOptions
from safeset.signals import image as image_module
from safeset.signals.image import has_image_signature, image_facts
from safeset.signals.pdq import PDQ

from . import hostile
from .support import all_rows, run_cli, scan_cli


def _scan(tmp_path: Path, source: Path, known_list: Path, *extra: str):
    return scan_cli(tmp_path / "scan", source, known_list, *extra)


def test_every_image_mode_and_container_hashes(tmp_path: Path, known_list: Path) -> None:
    folder = tmp_path / "good"
    folder.mkdir()
    for name, blob in hostile.good_images().items():
        (folder / name).write_bytes(blob)
    rows = {r["location"]: r for r in _scan(tmp_path, folder, known_list)}
    assert set(rows) == set(hostile.good_images())
    for name, row in rows.items():
        assert row["error"] is None, (name, row["error"])
        assert row["action"] == "keep" and len(row["pdq"]) == 64
    assert rows["one-pixel.png"]["pdq_quality"] < 50  # recorded, too weak to match
    assert rows["animated.gif"]["width"] == 160


def test_first_frame_of_animations_is_hashed() -> None:
    first, second = hostile.photo(), hostile.photo()
    buf = io.BytesIO()
    first.save(buf, "GIF", save_all=True, append_images=[second])
    still = io.BytesIO()
    first.save(still, "GIF")
    assert image_facts(buf.getvalue()).pdq == image_facts(still.getvalue()).pdq


def test_exif_orientation_is_not_applied() -> None:
    tagged, untagged = hostile.exif_rotated_jpeg()
    facts, plain = image_facts(tagged), image_facts(untagged)
    assert (facts.width, facts.height) == (200, 100)  # stored pixels, not the displayed ones
    assert facts.pdq == plain.pdq


def test_bad_images_become_review_rows_with_reasons(tmp_path: Path, known_list: Path) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    for name, (blob, _) in hostile.bad_images().items():
        (folder / name).write_bytes(blob)
    os.mkfifo(folder / "pipe.jpg")  # would block a naive reader forever
    (folder / "dangling.jpg").symlink_to(folder / "missing.jpg")
    (folder / "loop").symlink_to(folder)  # a symlink loop must not trap the walk
    rows = {r["location"]: r for r in _scan(tmp_path, folder, known_list)}  # a hang times out
    expected = {n: reason for n, (_, reason) in hostile.bad_images().items()}
    expected |= {
        "pipe.jpg": "cannot read: not a regular file",
        "dangling.jpg": "cannot read: No such file",
    }
    assert set(rows) == set(expected)
    for name, reason in expected.items():
        assert rows[name]["error"].startswith(reason), (name, rows[name]["error"])
        assert rows[name]["action"] == "review"


def test_a_sample_over_the_time_limit_becomes_an_error_row(
    tmp_path: Path, known_list: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "slow"
    folder.mkdir()
    for n in range(3):
        hostile.photo().save(folder / f"{n}.png")
    real = PDQ.compute

    def slow_on_one(self, image, options):
        if image.data == (folder / "1.png").read_bytes():
            time.sleep(30)
        return real(self, image, options)

    monkeypatch.setattr(PDQ, "compute", slow_on_one)
    out = tmp_path / "scan"
    scan([folder], [known_list], out, options=ScanOptions(sample_timeout=0.5), progress=False)
    rows = {r["location"]: r for r in all_rows(out)}
    assert rows["1.png"]["error"] == "timed out after 0.5s"
    assert rows["1.png"]["action"] == "review"
    assert rows["0.png"]["error"] is None and rows["2.png"]["error"] is None


def test_the_time_limit_holds_outside_the_main_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """As in a user's pipeline (HF datasets, Ray Data actors). Outside the main thread the limit
    takes effect in Python code (a blocking C call is not interruptible there): slow Python."""
    slow = io.BytesIO()
    hostile.photo().save(slow, "PNG")
    real = PDQ.compute

    def slow_on_one(self, image, options):
        end = time.monotonic() + 30
        while image.data == slow.getvalue() and time.monotonic() < end:
            pass
        return real(self, image, options)

    monkeypatch.setattr(PDQ, "compute", slow_on_one)
    listed = io.BytesIO()
    hostile.photo().save(listed, "PNG")
    auditor = safeset.Auditor(
        [safeset.HashList.from_hashes("l", {"md5": [hashlib.md5(b"x").hexdigest()]})],
        sample_timeout=0.5,
    )
    found: list = []
    worker = threading.Thread(
        target=lambda: found.extend(auditor.check([listed.getvalue(), slow.getvalue()]))
    )
    worker.start()
    worker.join(timeout=20)
    assert not worker.is_alive()
    assert [(v.action, v.error) for v in found] == [
        ("keep", None),
        ("review", "timed out after 0.5s"),
    ]


def _tar(path: Path, members: list[tuple[str, bytes | None, bytes]]) -> Path:
    """members: (name, data or None for a link, link type) in order."""
    with tarfile.open(path, "w") as tf:
        for name, data, kind in members:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = kind
                info.linkname = "/etc/passwd"
                tf.addfile(info)
            else:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return path


def test_hostile_tar_members(tmp_path: Path, known_list: Path) -> None:
    jpg = hostile.good_images()["rgb.jpg"]
    other = hostile.good_images()["still.webp"]
    shards = tmp_path / "shards"
    shards.mkdir()
    _tar(
        shards / "00000.tar",
        [
            ("a.jpg", jpg, b""),
            ("a.txt", b"caption a", b""),
            ("../../escape.jpg", other, b""),
            ("../../escape.txt", b"x", b""),
            ("/abs/olute.jpg", hostile.good_images()["image.bmp"], b""),
            ("link.jpg", None, tarfile.SYMTYPE),
            ("hard.jpg", None, tarfile.LNKTYPE),
            ("orphan.json", b'{"url": "https://example.org/x"}', b""),
            ("a.png", hostile.good_images()["gray.png"], b""),  # duplicate key, not adjacent
            ("two.jpg", jpg, b""),
            ("two.png", other, b""),
        ],
    )
    rows = _scan(tmp_path, shards, known_list)
    by_index = {r["index"]: r for r in rows}
    assert [r["key"] for r in sorted(rows, key=lambda r: r["index"])] == [
        "a",
        "../../escape",
        "/abs/olute",
        "link",
        "hard",
        "orphan",
        "a",
        "two",
    ]
    assert by_index[0]["error"] is None and by_index[6]["error"] is None  # duplicate keys both
    assert by_index[1]["error"] is None and by_index[2]["error"] is None
    assert "is a link or special file" in by_index[3]["error"]
    assert "is a link or special file" in by_index[4]["error"]
    assert by_index[5]["error"] == "no image member"
    # Both images of a two-image sample are hashed; the second is one of its parts.
    assert by_index[7]["error"] is None and by_index[7]["pdq"]
    assert [(p["name"], p["pdq"] is not None) for p in by_index[7]["parts"]] == [("two.png", True)]

    out = tmp_path / "clean" / "inner"
    result = run_cli(
        "clean",
        str(shards),
        "--scan",
        str(tmp_path / "scan"),
        "--out",
        str(out),
        "--keep-review",
        "-q",
    )
    assert result.returncode == 0, result.stderr
    # Nothing is extracted: hostile names stay names inside the cleaned tar.
    assert sorted(p.name for p in (tmp_path / "clean").rglob("*")) == ["00000.tar", "inner"]
    assert not (tmp_path / "escape.jpg").exists()
    with tarfile.open(out / "00000.tar") as tf:
        names = tf.getnames()
    assert "../../escape.jpg" in names and "link.jpg" in names


@pytest.mark.parametrize("where", ["header", "data", "end-of-archive"])
@pytest.mark.parametrize("member", [0, 2, 5])
def test_truncated_tars_end_in_an_error_row(tmp_path: Path, where: str, member: int) -> None:
    """Cut inside a member's header or data: the complete members, then one error row. Cut
    only in the zero blocks that end an archive: every sample, no error."""
    good = _tar(
        tmp_path / "good.tar",
        [(f"{n:03d}.jpg", hostile.good_images()["rgb.jpg"], b"") for n in range(6)],
    )
    with tarfile.open(good) as tf:
        info = tf.getmembers()[member]
        last = tf.getmembers()[-1]
    cut = {
        "header": info.offset + 100,
        "data": info.offset_data + info.size // 2,
        "end-of-archive": last.offset_data + last.size + 512,
    }[where]
    broken = tmp_path / "broken.tar"
    broken.write_bytes(good.read_bytes()[:cut])
    samples = list(TarShard(id="x", path=str(broken)).read())
    if where == "end-of-archive":
        assert [(s.key, s.error) for s in samples] == [(f"{n:03d}", None) for n in range(6)]
        return
    assert [(s.key, s.error) for s in samples[:-1]] == [(f"{n:03d}", None) for n in range(member)]
    assert samples[-1].error.startswith("corrupt or truncated tar")
    assert samples[-1].index == member


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.tuples(st.integers(0, 20_000), st.integers(0, 255)), max_size=12))
def test_fuzzed_tar_bytes_never_raise(tmp_path: Path, flips) -> None:
    good = tmp_path / "fuzz-src.tar"
    if not good.exists():
        _tar(good, [(f"{n:03d}.jpg", hostile.good_images()["rgb.jpg"], b"") for n in range(4)])
    blob = bytearray(good.read_bytes())
    for pos, value in flips:
        blob[pos % len(blob)] = value
    fuzzed = tmp_path / "fuzzed.tar"
    fuzzed.write_bytes(bytes(blob))
    samples = list(TarShard(id="x", path=str(fuzzed)).read())  # never raises
    # Consecutive indexes; at most the 4 samples there were plus one error row.
    assert [s.index for s in samples] == list(range(len(samples))) and len(samples) <= 5


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.tuples(st.integers(0, 100_000), st.integers(0, 255)), min_size=1, max_size=8))
def test_fuzzed_parquet_bytes_never_raise_past_the_source(tmp_path: Path, flips) -> None:
    good = tmp_path / "fuzz-src.parquet"
    if not good.exists():
        blob = hostile.good_images()["rgb.jpg"]
        pq.write_table(pa.table({"jpg": [blob] * 6, "key": list("abcdef")}), good, row_group_size=2)
    data = bytearray(good.read_bytes())
    for pos, value in flips:
        data[pos % len(data)] = value
    fuzzed = tmp_path / "fuzzed.parquet"
    fuzzed.write_bytes(bytes(data))
    try:
        shards = open_source(str(fuzzed)).shards("s")
    except SafesetError:
        return  # a schema that no longer names an image column: one clear error line
    for shard in shards:
        for sample in shard.read():
            assert sample.error or isinstance(sample.load(), bytes)


def test_parquet_with_nulls_duplicate_keys_and_a_corrupt_file(
    tmp_path: Path, known_list: Path
) -> None:
    folder = tmp_path / "pq"
    folder.mkdir()
    jpg = hostile.good_images()["rgb.jpg"]
    pq.write_table(
        pa.table({"key": ["k", "k", "k"], "jpg": pa.array([jpg, None, jpg])}), folder / "a.parquet"
    )
    (folder / "b.parquet").write_bytes(b"PAR1 this is not parquet")
    rows = _scan(tmp_path, folder, known_list)
    assert len(rows) == 4
    by = {(Path(r["source"]).name, r["location"]): r for r in rows}
    assert by[("a.parquet", "row 1")]["error"] == "image is null"
    assert by[("a.parquet", "row 0")]["error"] is None
    assert by[("a.parquet", "row 2")]["error"] is None
    assert by[("b.parquet", "whole file")]["error"].startswith("not a readable Parquet file")
    assert all(r["action"] == "review" for r in rows if r["error"])
    clean = run_cli(
        "clean",
        str(folder),
        "--scan",
        str(tmp_path / "scan"),
        "--out",
        str(tmp_path / "clean"),
        "-q",
    )
    assert clean.returncode == 0, clean.stderr
    assert pq.read_table(tmp_path / "clean" / "a.parquet").num_rows == 2
    assert not (tmp_path / "clean" / "b.parquet").exists()
    kept_review = run_cli(
        "clean",
        str(folder),
        "--scan",
        str(tmp_path / "scan"),
        "--out",
        str(tmp_path / "clean2"),
        "--keep-review",
        "-q",
    )
    # Review rows are kept, but an unreadable file has nothing to copy: left out, and said so.
    assert kept_review.returncode == 0, kept_review.stderr
    assert "1 left out (1 unreadable, not copied)" in kept_review.stdout


def test_parquet_with_the_wrong_schema_is_one_clear_error(tmp_path: Path, known_list: Path) -> None:
    path = tmp_path / "meta.parquet"
    pq.write_table(pa.table({"caption": ["a"], "width": [3]}), path)
    result = run_cli("scan", str(path), "--list", str(known_list), "--out", str(tmp_path / "o"))
    assert result.returncode == 2
    assert "neither image bytes" in result.stderr and "caption, width" in result.stderr
    assert "Traceback" not in result.stderr


def test_full_disk_leaves_no_partial_file(
    tmp_path: Path, known_list: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    hostile.photo().save(folder / "a.png")
    real_fdopen = os.fdopen

    class FullFile(io.RawIOBase):
        def writable(self) -> bool:
            return True

        def write(self, b) -> int:
            raise OSError(28, "No space left on device")

    def fake_fdopen(fd, mode="r", *args, **kwargs):
        if "w" in mode:
            os.close(fd)  # the temp file is created...
            return io.BufferedWriter(FullFile())  # ...but nothing fits on the disk
        return real_fdopen(fd, mode, *args, **kwargs)

    out = tmp_path / "scan"
    monkeypatch.setattr(os, "fdopen", fake_fdopen)
    with pytest.raises(SafesetError, match="No space left on device"):
        scan([folder], [known_list], out, progress=False)
    monkeypatch.undo()
    leftovers = [p for p in out.rglob("*") if p.is_file() and p.name != "job.json"]
    assert leftovers == []


def test_unwritable_output_is_one_clear_error(tmp_path: Path, known_list: Path) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    hostile.photo().save(folder / "a.png")
    result = run_cli(
        "scan", str(folder), "--list", str(known_list), "--out", "/proc/safeset-cannot-write-here"
    )
    assert result.returncode == 2
    assert "cannot write to /proc/safeset-cannot-write-here" in result.stderr
    assert "Traceback" not in result.stderr


def test_image_decoding_never_raises_on_arbitrary_bytes() -> None:
    for blob, reason in hostile.bad_images().values():
        with pytest.raises(image_module.UnreadableImage, match=reason.split(":")[0]):
            image_facts(blob)


def test_a_truncated_image_never_becomes_a_partial_hash() -> None:
    buf = io.BytesIO()
    hostile.photo((400, 300)).save(buf, "JPEG")
    for cut in (10, 100, 1000, len(buf.getvalue()) - 10):
        with pytest.raises(image_module.UnreadableImage):
            image_facts(buf.getvalue()[:cut])
    assert Image.open(buf).size == (400, 300)


def _md5_list(path: Path, blobs: list[bytes]) -> Path:
    path.write_text("".join(f"md5 {hashlib.md5(b).hexdigest()}\n" for b in blobs))
    return path


def _encoded(fmt: str) -> bytes:
    buf = io.BytesIO()
    hostile.photo().save(buf, fmt)
    return buf.getvalue()


def _bytes_anywhere(root: Path, blobs: list[bytes]) -> list[str]:
    return [
        p.name for p in root.rglob("*") if p.is_file() and any(b in p.read_bytes() for b in blobs)
    ]


def test_every_stored_file_is_hashed_whatever_its_type(tmp_path: Path) -> None:
    """Known bytes are found in any member: an avif, a heic safeset cannot decode, a second
    image, a file with a made-up extension; none reaches a cleaned copy, --keep-review or not."""
    avif, jp2 = _encoded("AVIF"), _encoded("JPEG2000")
    heic = b"\x00\x00\x00\x18ftypheic" + os.urandom(3000)  # undecodable here; its md5 is listed
    jpg, png = _encoded("JPEG"), _encoded("PNG")
    odd = os.urandom(2000)
    known = [avif, jp2, heic, png, odd]
    listed = _md5_list(tmp_path / "known.txt", known)
    shards = tmp_path / "shards"
    shards.mkdir()
    _tar(
        shards / "00000.tar",
        [
            ("a001.avif", avif, b""),
            ("a002.jp2", jp2, b""),
            ("a003.heic", heic, b""),
            ("a004.jpg", jpg, b""),
            ("a004.seg.png", png, b""),  # the second image of a sample is the listed one
            ("a005.jpg", _encoded("JPEG"), b""),
            ("a005.feature", odd, b""),
            ("a006.jpg", _encoded("JPEG"), b""),
        ],
    )
    rows = {r["key"]: r for r in _scan(tmp_path, shards, listed)}
    assert {k: r["action"] for k, r in rows.items()} == {
        "a001": "remove",
        "a002": "remove",
        "a003": "remove",
        "a004": "remove",
        "a005": "remove",
        "a006": "keep",
    }
    assert rows["a001"]["pdq"] and rows["a002"]["pdq"]  # decoded, not only hashed
    assert rows["a003"]["error"].startswith("not a recognised image format")
    assert [m["part"] for m in rows["a004"]["matches"]] == ["a004.seg.png"]
    assert [m["part"] for m in rows["a005"]["matches"]] == ["a005.feature"]
    out = tmp_path / "clean"
    result = run_cli(
        "clean", str(shards), "--scan", str(tmp_path / "scan"), "--out", str(out), "--keep-review"
    )
    assert result.returncode == 0, result.stderr
    with tarfile.open(out / "00000.tar") as tf:
        assert tf.getnames() == ["a006.jpg"]
    assert _bytes_anywhere(tmp_path / "clean", known) == []


def test_repeated_member_names_keep_their_own_bytes(tmp_path: Path, known_list: Path) -> None:
    """``tar -r`` appends a second member under the same name: both are copied as they were."""
    shards = tmp_path / "shards"
    shards.mkdir()
    members = [
        ("k001.jpg", _encoded("JPEG"), b""),
        ("k001.txt", b"aa", b""),
        ("k001.txt", b"bbbbbbbb", b""),
    ]
    _tar(shards / "00000.tar", members)
    _scan(tmp_path, shards, known_list)
    out = tmp_path / "clean"
    result = run_cli("clean", str(shards), "--scan", str(tmp_path / "scan"), "--out", str(out))
    assert result.returncode == 0, result.stderr
    with tarfile.open(out / "00000.tar") as tf:
        copied = [(m.name, tf.extractfile(m).read()) for m in tf.getmembers()]
    assert copied == [(name, data) for name, data, _ in members]


def test_compressed_shards_are_cleaned_into_the_same_compression(
    tmp_path: Path, known_list: Path
) -> None:
    shards = tmp_path / "shards"
    shards.mkdir()
    members = [(f"{n:03d}.jpg", _encoded("JPEG"), b"") for n in range(3)]
    plain = _tar(tmp_path / "plain.tar", members)
    with gzip.open(shards / "00000.tar.gz", "wb") as f:
        f.write(plain.read_bytes())
    _scan(tmp_path, shards, known_list)
    out = tmp_path / "clean"
    result = run_cli("clean", str(shards), "--scan", str(tmp_path / "scan"), "--out", str(out))
    assert result.returncode == 0, result.stderr
    cleaned = out / "00000.tar.gz"
    assert cleaned.read_bytes()[:2] == b"\x1f\x8b"  # gzip, as the source
    with tarfile.open(cleaned, "r:gz") as tf:
        assert [(m.name, tf.extractfile(m).read()) for m in tf] == [(n, d) for n, d, _ in members]


def test_a_file_named_like_a_temporary_file_is_copied(tmp_path: Path, known_list: Path) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    files = {
        "a.jpg": _encoded("JPEG"),
        ".a.jpg.tmp": _encoded("JPEG"),
        ".safeset-x.tmp": _encoded("PNG"),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    _scan(tmp_path, folder, known_list)
    out = tmp_path / "clean"
    result = run_cli("clean", str(folder), "--scan", str(tmp_path / "scan"), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "3 samples kept" in result.stdout
    assert {p.name: p.read_bytes() for p in out.iterdir()} == files


def test_symbolic_links_are_followed_inside_the_dataset_and_refused_outside(
    tmp_path: Path, known_list: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = _encoded("PNG")
    (outside / "secret.png").write_bytes(secret)
    folder = tmp_path / "imgs"
    (folder / "real").mkdir(parents=True)
    inner = {f"{n}.jpg": _encoded("JPEG") for n in range(5)}
    for name, data in inner.items():
        (folder / "real" / name).write_bytes(data)
    (folder / "linked").symlink_to(folder / "real")  # inside: walked
    (folder / "elsewhere").symlink_to(outside)  # outside: refused
    (folder / "leak.png").symlink_to(outside / "secret.png")
    rows = {r["location"]: r for r in _scan(tmp_path, folder, known_list)}
    assert set(rows) == (
        {f"real/{n}" for n in inner} | {f"linked/{n}" for n in inner} | {"elsewhere", "leak.png"}
    )
    for rel in ("elsewhere", "leak.png"):
        reason = f"cannot read: symbolic link leads outside the dataset folder: {rel}"
        assert rows[rel]["error"] == reason
        assert rows[rel]["action"] == "review" and rows[rel]["md5"] is None
    assert all(rows[f"linked/{n}"]["error"] is None for n in inner)
    out = tmp_path / "clean"
    result = run_cli(
        "clean", str(folder), "--scan", str(tmp_path / "scan"), "--out", str(out), "--keep-review"
    )
    assert result.returncode == 0, result.stderr
    assert "2 unreadable, not copied" in result.stdout
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == sorted(
        [f"real/{n}" for n in inner] + [f"linked/{n}" for n in inner]
    )
    assert _bytes_anywhere(tmp_path / "scan", [secret]) == []


def test_images_named_as_something_else_are_recognised_by_their_bytes() -> None:
    named = {n: d for n, d in hostile.good_images().items()}
    named |= {"a.avif": _encoded("AVIF"), "a.jp2": _encoded("JPEG2000")}
    for name, data in named.items():
        assert has_image_signature(data), name
    for text in (b"a caption", b'{"url": "x"}', b"", b"RIFF1234WAVE", b"BZh91AY&SY"):
        assert not has_image_signature(text), text


def test_a_known_photo_disguised_as_a_caption_is_matched_by_pdq(
    tmp_path: Path, examples: ExampleSet, known_list: Path
) -> None:
    copy = next(r for r in examples.records if r.hidden and r.hidden.endswith("/recompressed"))
    shards = tmp_path / "shards"
    shards.mkdir()
    _tar(shards / "00000.tar", [("k.jpg", _encoded("JPEG"), b""), ("k.txt", copy.data, b"")])
    (row,) = _scan(tmp_path, shards, known_list)
    assert row["action"] == "remove"
    assert [(m["signal_type"], m["part"]) for m in row["matches"]] == [("pdq", "k.txt")]
