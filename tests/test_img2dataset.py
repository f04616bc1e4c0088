"""Datasets written by img2dataset itself, in each resize mode and both its output formats,
scanned as img2dataset wrote them: every known photo removed, no distractor flagged.

img2dataset runs as a user runs it (its command line, in a child process) against benign photos
served from 127.0.0.1; the list holds what real lists hold for the originals (reference PDQ,
md5, sha256). Skipped where img2dataset is not installed (it is in the bench and test extras).
"""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from safeset.api import clean, scan
from safeset.engines import LocalEngine
from safeset.signals.unpad import VARIANT_UNPADDED

from .img2dataset_run import MODES, PhotoSet, photos, run_img2dataset, served, write_list
from .support import all_rows

pytest.importorskip("img2dataset")

KNOWN = 4
# Each mode in webdataset; Parquet (the same metadata, as columns) in the default mode only:
# each img2dataset run takes seconds, the bench runs every combination.
CASES = [("webdataset", mode) for mode in MODES] + [("parquet", "border-256")]


@pytest.fixture(scope="module")
def photo_set() -> PhotoSet:
    return PhotoSet(photos(9, seed=11), known=KNOWN)


@pytest.fixture(scope="module")
def downloads(photo_set: PhotoSet, tmp_path_factory: pytest.TempPathFactory):
    """Every output of CASES, made while one server runs; the list beside them."""
    root = tmp_path_factory.mktemp("img2dataset")
    with served(photo_set) as urls, ThreadPoolExecutor(len(CASES)) as pool:
        # Each run is a child process that spends most of its time importing: run them at once.
        runs = {
            case: pool.submit(run_img2dataset, urls, root / "-".join(case), case[0], MODES[case[1]])
            for case in CASES
        }
        made = {case: run.result() for case, run in runs.items()}
    return made, write_list(photo_set, root / "known.csv")


def _square(data: bytes) -> bool:
    with Image.open(io.BytesIO(data)) as img:
        return img.width == img.height


@pytest.mark.parametrize(("fmt", "mode"), CASES)
def test_every_known_photo_is_removed(
    downloads, photo_set: PhotoSet, fmt: str, mode: str, tmp_path: Path
) -> None:
    made, known_list = downloads
    out = tmp_path / "scan"
    scan([made[fmt, mode]], [f"known={known_list}"], out, engine=LocalEngine(1), progress=False)
    rows = all_rows(out)
    assert len(rows) == len(photo_set.photos) and not any(r["error"] for r in rows)
    known = [r for r in rows if photo_set.is_known(r["url"])]
    assert len(known) == KNOWN
    assert all(r["action"] == "remove" for r in known), [r["reasons"] for r in known]
    assert all(r["action"] == "keep" for r in rows if not photo_set.is_known(r["url"]))

    def found_by(row, test) -> bool:
        return any(test(m) for m in row["matches"])

    # img2dataset records the original's sha256 in every mode; where it stored the original
    # itself (no-resize), the match names the stored file, whose own sha256 is the same.
    for r in known:
        part = r["location"] if mode == "no-resize" else "recorded:sha256"
        assert found_by(r, lambda m, part=part: (m["signal_type"], m["part"]) == ("sha256", part))
    original = {u: d for u, d in zip(photo_set.names, photo_set.photos, strict=True)}
    if mode == "border-256":
        # The photos padded to a square are found by PDQ of what lies inside the padding.
        padded = [r for r in known if not _square(original[r["url"].rsplit("/", 1)[1]])]
        unpadded = [r for r in padded if found_by(r, lambda m: m["variant"] == VARIANT_UNPADDED)]
        assert padded and len(unpadded) >= len(padded) - 1
        assert any(reason.endswith(":v8") for r in unpadded for reason in r["reasons"])
    elif mode == "keep_ratio-384":
        assert all(found_by(r, lambda m: m["signal_type"] == "pdq") for r in known)
    elif mode == "no-resize":
        assert all(found_by(r, lambda m: m["signal_type"] == "md5") for r in known)
    if mode != "no-resize":
        assert "recorded:sha256" in (out / "manifest.csv").read_text()


def test_cleaned_outputs_hold_only_the_distractors(
    downloads, photo_set: PhotoSet, tmp_path: Path
) -> None:
    """The border mode's outputs cleaned, and read back with the libraries that read them."""
    import webdataset as wds

    made, known_list = downloads
    distractors = len(photo_set.photos) - KNOWN
    for fmt in ("webdataset", "parquet"):
        source = made[fmt, "border-256"]
        out = tmp_path / f"scan-{fmt}"
        scan([source], [f"known={known_list}"], out, engine=LocalEngine(1), progress=False)
        cleaned = tmp_path / f"clean-{fmt}"
        counts = clean([source], out, cleaned, progress=False)
        assert (counts.kept, counts.left_out) == (distractors, KNOWN)
        if fmt == "webdataset":
            tars = sorted(str(p) for p in cleaned.glob("*.tar"))
            samples = list(wds.WebDataset(tars, shardshuffle=False).to_tuple("json"))
        else:
            samples = pq.read_table(sorted(cleaned.glob("*.parquet"))[0]).to_pylist()
        assert len(samples) == distractors
