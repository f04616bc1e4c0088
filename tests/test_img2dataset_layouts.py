"""img2dataset's own output, made by img2dataset from a 127.0.0.1 server: its webdataset
folder (tars + metadata Parquet + _stats.json), its parquet folder, and its ``.txt`` url list;
each scanned, cleaned and read back with the library it is for."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import safeset
from safeset.engines import LocalEngine
from safeset.examples import ExampleSet
from safeset.formats import open_source

from .support import all_rows
from .urlserver import serving

pytest.importorskip("img2dataset")
wds = pytest.importorskip("webdataset")
datasets = pytest.importorskip("datasets")


def _img2dataset(urls: Path, out: Path, output_format: str) -> subprocess.Popen:
    """img2dataset as its users run it: bytes kept as served (no resize, no re-encoding)."""
    cli = Path(sys.executable).with_name("img2dataset")
    return subprocess.Popen(
        [
            str(cli), f"--url_list={urls}", f"--output_folder={out}", "--input_format=txt",
            f"--output_format={output_format}", "--processes_count=1", "--thread_count=8",
            "--number_sample_per_shard=40", "--resize_mode=no", "--disable_all_reencoding=True",
            "--enable_wandb=False", "--timeout=5", "--retries=0",
        ],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "WANDB_MODE": "disabled"},
    )  # fmt: skip


@pytest.fixture(scope="module")
def downloaded(examples: ExampleSet, tmp_path_factory) -> Iterator[tuple[Path, dict[str, bytes]]]:
    """(folder holding urls.txt, wds/, pq/; the served bytes by url), the server still up."""
    root = tmp_path_factory.mktemp("img2dataset")
    with serving({f"{r.key}.{r.ext}": r.data for r in examples.records}) as server:
        by_url = {server.url(f"/img/{r.key}.{r.ext}"): r for r in examples.records}
        lines = [*by_url, server.url("/missing")]  # one failed download, as in real lists
        (root / "urls.txt").write_text("\n".join(lines) + "\n")
        runs = [  # both at once: most of their time is starting up
            _img2dataset(root / "urls.txt", root / "wds", "webdataset"),
            _img2dataset(root / "urls.txt", root / "pq", "parquet"),
        ]
        for run in runs:
            _, stderr = run.communicate(timeout=240)
            assert run.returncode == 0, stderr[-2000:]
        yield root, by_url


def _scan_clean(source: Path, known_list: Path, tmp_path: Path) -> tuple[list[dict], Path]:
    scan_dir, clean_dir = tmp_path / "scan", tmp_path / "clean"
    safeset.scan([source], [known_list], scan_dir, options=safeset.ScanOptions(dihedral=True),
                 engine=LocalEngine(1), progress=False)  # fmt: skip
    safeset.clean([source], scan_dir, clean_dir, progress=False)
    return all_rows(scan_dir), clean_dir


def _stats(path: Path) -> dict:
    return json.loads(path.read_text())


def test_webdataset_output_with_its_sidecars(downloaded, known_list: Path, tmp_path: Path):
    root, by_url = downloaded
    source = root / "wds"
    assert open_source(source).kind == "webdataset"
    rows, clean_dir = _scan_clean(source, known_list, tmp_path)
    removed = {r["url"] for r in rows if r["action"] == "remove"}
    assert removed == {u for u, r in by_url.items() if r.hidden}

    def read(folder: Path) -> list[tuple[str, bytes]]:
        shards = sorted(str(p) for p in folder.glob("*.tar"))
        return [
            (json.loads(s["json"])["url"], s["jpg"] if "jpg" in s else s["png"])
            for s in wds.WebDataset(shards, shardshuffle=False)
        ]

    original = read(source)
    assert len(original) == len(by_url)
    assert read(clean_dir) == [(u, b) for u, b in original if u not in removed]
    assert all(by_url[u].data == b for u, b in read(clean_dir))
    decoded = next(iter(wds.WebDataset(str(next(clean_dir.glob("*.tar"))), shardshuffle=False)
                        .decode("pil")))  # fmt: skip
    assert decoded["__key__"] and hasattr(decoded.get("jpg", decoded.get("png")), "size")

    # Each shard's metadata Parquet minus the removed rows; _stats.json agreeing with it.
    for meta in sorted(source.glob("*.parquet")):
        before = pq.read_table(meta).to_pylist()
        after = pq.read_table(clean_dir / meta.name).to_pylist()
        assert after == [r for r in before if r["url"] not in removed]
        assert pq.read_schema(clean_dir / meta.name) == pq.read_schema(meta)
        stats_name = meta.name.replace(".parquet", "_stats.json")
        old, new = _stats(source / stats_name), _stats(clean_dir / stats_name)
        gone = len(before) - len(after)
        assert new["count"] == old["count"] - gone == len(after)
        assert new["successes"] == old["successes"] - gone
        assert new["successes"] == sum(r["status"] == "success" for r in after)
        assert new["failed_to_download"] == old["failed_to_download"]
        assert new["status_dict"].get("success", 0) == new["successes"]
        assert {k: v for k, v in new.items() if k not in ("count", "successes", "status_dict")} == {
            k: v for k, v in old.items() if k not in ("count", "successes", "status_dict")
        }
    assert sum(_stats(p)["failed_to_download"] for p in clean_dir.glob("*_stats.json")) == 1


def test_parquet_output_folder(downloaded, known_list: Path, tmp_path: Path) -> None:
    root, by_url = downloaded
    source = root / "pq"
    assert sorted(p.suffix for p in source.iterdir() if not p.name.startswith("_")) == [
        ".json", ".json", ".json", ".parquet", ".parquet", ".parquet"
    ]  # fmt: skip
    assert open_source(source).kind == "parquet"
    rows, clean_dir = _scan_clean(source, known_list, tmp_path)
    assert {r["url"] for r in rows if r["action"] == "remove"} == {
        u for u, r in by_url.items() if r.hidden
    }
    # The failed download has no bytes: an error row, left for review, not a silent pass.
    assert [r["error"] for r in rows if r["action"] == "review"] == ["image is null"]
    cleaned = datasets.load_dataset(
        "parquet", data_files=str(clean_dir / "*.parquet"), split="train",
        cache_dir=str(tmp_path / "cache"),
    )  # fmt: skip
    originals = [
        row for f in sorted(source.glob("*.parquet")) for row in pq.read_table(f).to_pylist()
    ]
    expected = [
        (r["url"], r["jpg"])
        for r in originals
        if r["jpg"] is not None and not by_url[r["url"]].hidden
    ]
    assert [(row["url"], row["jpg"]) for row in cleaned] == expected
    assert all(by_url[u].data == b for u, b in expected)
    for stats in sorted(clean_dir.glob("*_stats.json")):
        table = pq.read_table(clean_dir / stats.name.replace("_stats.json", ".parquet"))
        new = _stats(stats)
        assert new["count"] == table.num_rows
        assert new["successes"] == table.num_rows  # the failed row went with its review row
        assert new["failed_to_download"] == 0


def test_txt_url_list(downloaded, known_list: Path, tmp_path: Path) -> None:
    root, by_url = downloaded
    urls = root / "urls.txt"
    assert open_source(urls).kind == "url-list"
    rows, clean_dir = _scan_clean(urls, known_list, tmp_path)
    assert {r["url"] for r in rows if r["action"] == "remove"} == {
        u for u, r in by_url.items() if r.hidden
    }
    assert [r["error"] for r in rows if r["error"]] == ["http 404"]
    kept = [line for line in urls.read_text().splitlines() if line in by_url]
    kept = [u for u in kept if not by_url[u].hidden]
    assert (clean_dir / "urls.txt").read_text() == "\n".join(kept) + "\n"
