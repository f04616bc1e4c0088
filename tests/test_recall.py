"""Known images in the forms datasets hold them: recorded original hashes, padding undone
before PDQ (variant 8), and expansion from hits to their near-copies (review, never remove).

Benign photos only: seeded mosaics of scikit-image's bundled photos (tests/img2dataset_run).
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image, ImageDraw

from safeset.api import Auditor, _sample, clean, load_lists, scan
from safeset.engines import LocalEngine
from safeset.expansion import expand
from safeset.lists import ListSpec, load_list
from safeset.matching.matcher import Matcher
from safeset.pipeline import Scanner, ScanOptions
from safeset.policy import Policy
from safeset.signals import ComputeOptions
from safeset.signals.image import ImageView, image_facts
from safeset.signals.pdq import PDQ
from safeset.signals.pdq_reference import hamming_distance
from safeset.signals.unpad import VARIANT_UNPADDED, content_box
from safeset.store import ScanDir

from .img2dataset_run import photos
from .support import all_rows, assert_same_scan
from .urlserver import closed_port_url, serving


@pytest.fixture(scope="module")
def pics() -> list[bytes]:
    return photos(12, seed=7)


def _jpeg(img: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _open(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data)).convert("RGB")


def _list(tmp_path: Path, lines: list[str], name: str = "known.csv") -> Path:
    path = tmp_path / name
    path.write_text("signal_type,signal_str\n" + "\n".join(lines) + "\n")
    return path


def _pdq_line(data: bytes) -> str:
    return f"pdq,{image_facts(data, exact_pdq=True).pdq.hex}"


def _tars(records: list[tuple[str, bytes, dict | None]], root: Path, per_shard: int = 4) -> Path:
    root.mkdir(parents=True)
    for n, start in enumerate(range(0, len(records), per_shard)):
        with tarfile.open(root / f"{n:05d}.tar", "w") as tf:
            for key, data, meta in records[start : start + per_shard]:
                members = [(f"{key}.jpg", data)]
                if meta is not None:
                    members.append((f"{key}.json", json.dumps(meta).encode()))
                for name, blob in members:
                    info = tarfile.TarInfo(name)
                    info.size = len(blob)
                    tf.addfile(info, io.BytesIO(blob))
    return root


# ------------------------------------------------------------------ recorded original hashes


def test_sha512_lists_load_and_match_stored_bytes(pics: list[bytes], tmp_path: Path) -> None:
    lst = _list(tmp_path, [f"sha512,{hashlib.sha512(pics[0]).hexdigest()}"])
    assert load_list(ListSpec.parse(str(lst))).counts() == {"sha512": 1}
    verdicts = Auditor([lst]).check([pics[0], pics[1]])
    assert [v.action for v in verdicts] == ["remove", "keep"]
    assert verdicts[0].reasons == ("hash:known:sha512:d=0",)


@pytest.mark.parametrize("field", ["md5", "sha256", "sha512"])
def test_recorded_hash_in_metadata_matches_the_list(
    field: str, pics: list[bytes], tmp_path: Path
) -> None:
    original = pics[0]
    stored = _jpeg(_open(original).resize((100, 80)), 60)  # nothing stored matches
    digest = hashlib.new(field, original).hexdigest()
    lst = _list(tmp_path, [f"{field},{digest}"])
    items = [
        {"image": stored, "metadata": {field: digest.upper()}},  # case does not matter
        {"image": stored, "metadata": {field: digest[:-2]}},  # truncated: ignored
        {"image": stored, "metadata": {field: 42}},  # not a string: ignored
        {"image": stored},
    ]
    verdicts = Auditor([lst]).check(items)
    assert [v.action for v in verdicts] == ["remove", "keep", "keep", "keep"]
    assert verdicts[0].reasons == (f"hash:known:{field}(recorded):d=0",)
    assert verdicts[0].matches[0].part == f"recorded:{field}"
    # Off: only the stored bytes count.
    lists = load_lists([lst])
    off = Scanner(Matcher(lists), ScanOptions(recorded=False))
    assert off.scan_batch([_sample(0, items[0])])[0]["action"] == "keep"
    # Other field names, as configured.
    other = Scanner(Matcher(lists), ScanOptions(recorded_fields={"orig_hash": field}))
    row = other.scan_batch([_sample(0, {"image": stored, "metadata": {"orig_hash": digest}})])[0]
    assert row["action"] == "remove" and row["matches"][0]["part"] == "recorded:orig_hash"


def test_recorded_hash_matches_without_stored_bytes_and_clean_checks_stored_bytes(
    pics: list[bytes], tmp_path: Path
) -> None:
    """A Parquet row whose image is null but whose sha256 column names a listed file is removed
    (the manifest says by which field); clean verifies the stored bytes, never the record."""
    lst = _list(tmp_path, [f"sha256,{hashlib.sha256(pics[0]).hexdigest()}"])
    data = tmp_path / "data" / "part.parquet"
    data.parent.mkdir()
    table = pa.table(
        {
            "key": ["a", "b", "c"],
            "jpg": pa.array([None, pics[1], pics[2]], pa.binary()),
            "sha256": [
                hashlib.sha256(pics[0]).hexdigest(),
                hashlib.sha256(pics[0]).hexdigest(),  # stored bytes differ from the record
                hashlib.sha256(pics[2]).hexdigest(),
            ],
        }
    )
    pq.write_table(table, data)
    out = tmp_path / "scan"
    scan([data], [lst], out, engine=LocalEngine(1), progress=False)
    rows = {r["key"]: r for r in all_rows(out)}
    assert rows["a"]["action"] == rows["b"]["action"] == "remove"
    assert rows["c"]["action"] == "keep"
    assert "hash:known:sha256(recorded):d=0" in rows["b"]["reasons"]
    manifest = (out / "manifest.csv").read_text()
    assert manifest.count(",recorded:sha256") == 2
    cleaned = tmp_path / "clean"
    counts = clean([data], out, cleaned, progress=False)
    assert (counts.kept, counts.left_out) == (1, 2)
    assert pq.read_table(cleaned / "part.parquet").column("key").to_pylist() == ["c"]


def test_url_table_recorded_hash_matches_even_when_the_download_fails(
    pics: list[bytes], tmp_path: Path
) -> None:
    lst = _list(tmp_path, [f"md5,{hashlib.md5(pics[0]).hexdigest()}"])
    with serving({"a.jpg": pics[3]}) as server:
        table = tmp_path / "data" / "urls.csv"
        table.parent.mkdir()
        table.write_text(
            "url,md5\n"
            f"{closed_port_url()},{hashlib.md5(pics[0]).hexdigest()}\n"
            f"{server.url('/img/a.jpg')},{hashlib.md5(pics[3]).hexdigest()}\n"
        )
        out = tmp_path / "scan"
        scan([table], [lst], out, engine=LocalEngine(1), progress=False)
    rows = all_rows(out)
    assert [r["action"] for r in rows] == ["remove", "keep"]
    assert rows[0]["error"] and rows[0]["matches"][0]["part"] == "recorded:md5"


# ------------------------------------------------------------------ padding undone


def _letterbox(img: Image.Image, colour=(0, 0, 0)) -> Image.Image:
    w, h = img.size
    canvas = Image.new("RGB", (w, int(h * 1.5)) if w >= h else (int(w * 1.5), h), colour)
    canvas.paste(img, ((canvas.width - w) // 2, (canvas.height - h) // 2))
    return canvas


def test_uniform_borders_of_any_colour_are_detected(pics: list[bytes]) -> None:
    img = _open(pics[0])
    for colour in ((0, 0, 0), (255, 255, 255), (40, 90, 200)):
        boxed = _letterbox(img, colour)
        view = ImageView(_jpeg(boxed))
        box = content_box(view.pdq_luma(), view.size)
        assert box is not None
        left, top, right, bottom = box
        w, h = boxed.size
        ex = ((w - img.width) / 2 / w, (h - img.height) / 2 / h)
        assert abs(left - ex[0]) < 0.03 and abs(top - ex[1]) < 0.03
        assert abs(1 - right - ex[0]) < 0.03 and abs(1 - bottom - ex[1]) < 0.03
    assert content_box(ImageView(pics[0]).pdq_luma(), img.size) is None


@pytest.mark.parametrize(
    "meta",
    [{}, {"original_width": float("inf"), "original_height": 3}, {"original_width": True,
     "original_height": 5}, {"original_width": "640", "original_height": "480"},
     {"original_width": float("nan"), "original_height": 1}, {"original_width": 0}],
)  # fmt: skip
def test_hostile_original_sizes_are_ignored(meta: dict, pics: list[bytes], tmp_path: Path) -> None:
    from safeset.signals.unpad import original_size

    assert original_size(meta) is None
    lst = _list(tmp_path, [_pdq_line(pics[0])])
    verdict = Auditor([lst]).check([{"image": pics[0], "metadata": meta}])[0]
    assert verdict.action == "remove" and verdict.error is None


def test_original_size_gives_the_box_and_center_crops_are_left_alone(pics: list[bytes]) -> None:
    img = _open(pics[1])
    side = max(img.size)
    square = Image.new("RGB", (side, side), (255, 255, 255))
    square.paste(img, ((side - img.width) // 2, (side - img.height) // 2))
    view = ImageView(_jpeg(square.resize((256, 256))))
    box = content_box(view.pdq_luma(), view.size, img.size)
    scale = 256 / side
    assert box is not None
    assert abs((box[2] - box[0]) * 256 - img.width * scale) < 2
    assert abs((box[3] - box[1]) * 256 - img.height * scale) < 2
    # Same geometry, no padding (center_crop): nothing to undo.
    crop = img.crop((0, 0, min(img.size), min(img.size))).resize((256, 256))
    view = ImageView(_jpeg(crop))
    assert content_box(view.pdq_luma(), view.size, img.size) is None


@pytest.mark.parametrize("exact", [False, True])
def test_unpadded_variant_lands_near_the_original(pics: list[bytes], exact: bool) -> None:
    original = pics[2]
    reference = image_facts(original, exact_pdq=True).pdq.hash
    view = ImageView(_jpeg(_letterbox(_open(original))))
    values = PDQ().compute(view, ComputeOptions(unpad=True, exact=exact, dihedral=True))
    assert [v.variant for v in values] == [*range(8), VARIANT_UNPADDED]
    assert hamming_distance(values[0].value, reference) > 31
    assert hamming_distance(values[-1].value, reference) <= 16


def test_letterboxed_copy_is_removed_naming_the_variant(pics: list[bytes], tmp_path: Path) -> None:
    lst = _list(tmp_path, [_pdq_line(pics[0])])
    boxed = _jpeg(_letterbox(_open(pics[0]), (20, 20, 20)))
    verdict = Auditor([lst]).check([boxed, pics[5]])
    assert [v.action for v in verdict] == ["remove", "keep"]
    assert verdict[0].matches[0].variant == VARIANT_UNPADDED
    assert verdict[0].reasons[0].endswith(":v8")


# ------------------------------------------------------------------ expansion


def _banner(img: Image.Image) -> Image.Image:
    band = img.height // 6
    out = Image.new("RGB", (img.width, img.height + band), (200, 30, 40))
    out.paste(img, (0, band))
    draw = ImageDraw.Draw(out)
    for x in range(6, out.width - 14, 22):
        draw.rectangle((x, band // 3, x + 12, 2 * band // 3), fill=(255, 255, 255))
    return out


def _crop(img: Image.Image) -> Image.Image:
    dw, dh = img.width // 20, img.height // 20
    return img.crop((dw // 2, dh, img.width - dw // 2, img.height))


@pytest.fixture(scope="module")
def near_set(pics: list[bytes], tmp_path_factory: pytest.TempPathFactory):
    """Two known photos, each with a listed copy (the hit), a 5% crop and a banner copy the
    list does not match, among unrelated photos."""
    root = tmp_path_factory.mktemp("near")
    known = pics[:2]
    lst = _list(root, [_pdq_line(p) for p in known])
    records = []
    for i, data in enumerate(known):
        img = _open(data)
        records += [
            (f"k{i}-hit", _jpeg(img.resize((img.width * 3 // 4, img.height * 3 // 4))), None),
            (f"k{i}-crop", _jpeg(_crop(img)), None),
            (f"k{i}-banner", _jpeg(_banner(img)), None),
        ]
    records += [(f"d{i}", data, None) for i, data in enumerate(pics[2:])]
    order = np.random.default_rng(0).permutation(len(records))
    dataset = _tars([records[j] for j in order], root / "data")
    return dataset, lst


def test_expansion_puts_near_copies_of_hits_to_review(near_set, tmp_path: Path) -> None:
    dataset, lst = near_set
    out = tmp_path / "scan"
    summary = scan([dataset], [lst], out, engine=LocalEngine(1), progress=False)
    rows = {r["key"]: r for r in all_rows(out)}
    for i in range(2):
        assert rows[f"k{i}-hit"]["action"] == "remove"
        for copy in ("crop", "banner"):
            row = rows[f"k{i}-{copy}"]
            if row["matches"]:
                continue  # the list itself found it: removed, not a near-copy
            assert row["action"] == "review", (copy, row["reasons"])
            assert row["reasons"][0].startswith(f"near:k{i}-hit:d=")
            assert row["near_of"] == f"k{i}-hit" and row["near_raised"]
    assert all(r["action"] == "keep" for k, r in rows.items() if k.startswith("d"))
    # Expansion never removes: every removed row has a list match.
    assert all(r["matches"] for r in rows.values() if r["action"] == "remove")
    assert summary["expansion"]["hits"] == 2 and summary["expansion"]["near"] >= 3
    assert summary["actions"]["review"] == summary["expansion"]["near"]
    assert "near:" in (out / "manifest.csv").read_text()
    # Cleaning leaves out review rows unless asked to keep them.
    counts = clean([dataset], out, tmp_path / "clean", keep_review=True, progress=False)
    assert counts.left_out == 2


def test_expansion_is_recomputed_identically_on_resume(near_set, tmp_path: Path) -> None:
    dataset, lst = near_set
    reference = tmp_path / "reference"
    scan([dataset], [lst], reference, engine=LocalEngine(1), progress=False)
    before = all_rows(reference)
    # Running the step again changes nothing (it starts from the policy's decisions).
    assert expand(ScanDir(reference)).shards_rewritten == 0
    assert all_rows(reference) == before
    # A killed scan: some shard results gone (including a hit's), some already expanded.
    resumed = tmp_path / "resumed"
    shutil.copytree(reference, resumed)
    for shard_id in ScanDir(resumed).shard_ids()[::2]:
        ScanDir(resumed).shard_file(shard_id).unlink()
    (resumed / "summary.json").unlink()
    scan([dataset], [lst], resumed, engine=LocalEngine(2), progress=False)
    assert_same_scan(reference, resumed)


def test_no_expansion_when_hits_are_not_removed_or_when_off(near_set, tmp_path: Path) -> None:
    dataset, lst = near_set
    review_hits = Policy.from_dict({"actions": {"hash_match": "review"}})
    out = tmp_path / "policy"
    summary = scan(
        [dataset], [lst], out, options=ScanOptions(policy=review_hits), progress=False,
        engine=LocalEngine(1),
    )  # fmt: skip
    assert summary["expansion"]["hits"] == 0
    assert not any(r["near_of"] for r in all_rows(out))
    off = tmp_path / "off"
    summary = scan(
        [dataset], [lst], off, options=ScanOptions(expand=False), progress=False,
        engine=LocalEngine(1),
    )  # fmt: skip
    assert summary["expansion"] is None
    assert all(r["action"] != "review" for r in all_rows(off))


@pytest.mark.ray
def test_expansion_on_the_ray_engine_matches_the_local_engine(near_set, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    from safeset.engines.ray import RayEngine

    dataset, lst = near_set
    scan([dataset], [lst], tmp_path / "local", engine=LocalEngine(1), progress=False)
    scan([dataset], [lst], tmp_path / "ray", engine=RayEngine(workers=2), progress=False)
    assert_same_scan(tmp_path / "local", tmp_path / "ray")
    assert any(r["near_of"] for r in all_rows(tmp_path / "ray"))
