"""The dataset layouts users hold, each built with the library that makes it (Hugging Face
``datasets``, ``webdataset``), scanned and cleaned, and the cleaned copy read back with that
same library: exactly the kept samples, byte-identical."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

import safeset
from safeset.engines import LocalEngine
from safeset.examples import ExampleSet, write_webdataset
from safeset.formats import open_source

from .support import all_rows, run_cli

datasets = pytest.importorskip("datasets")
wds = pytest.importorskip("webdataset")


def _png(n: int) -> bytes:
    """A small benign mask-like image, different for every ``n``."""
    buf = io.BytesIO()
    Image.new("L", (24, 16), n % 256).save(buf, "PNG")
    return buf.getvalue()


def _scan_and_clean(source: Path | str, known_list: Path, tmp_path: Path) -> tuple[list, Path]:
    scan_dir, clean_dir = tmp_path / "scan", tmp_path / "clean"
    options = safeset.ScanOptions(dihedral=True)
    safeset.scan([source], [known_list], scan_dir, options=options, engine=LocalEngine(1),
                 progress=False)  # fmt: skip
    safeset.clean([source], scan_dir, clean_dir, progress=False)
    return all_rows(scan_dir), clean_dir


def _hidden_seg(examples: ExampleSet) -> dict[int, bytes]:
    """Two distractor rows whose second image is a hidden copy of a known photo."""
    hidden = [r.data for r in examples.records if r.hidden]
    rows = [n for n, r in enumerate(examples.records) if not r.hidden][:2]
    return {rows[0]: hidden[0], rows[1]: hidden[1]}


def _features():
    return datasets.Features(
        {
            "key": datasets.Value("string"),
            "picture": datasets.Image(),
            "seg": datasets.Image(),
            "text": datasets.Value("string"),
        }
    )


def _rows(examples: ExampleSet, seg: dict[int, bytes]) -> dict[str, list]:
    return {
        "key": [r.key for r in examples.records],
        "picture": [{"bytes": r.data, "path": None} for r in examples.records],
        "seg": [{"bytes": seg.get(n, _png(n)), "path": None} for n in range(len(examples.records))],
        "text": [r.caption for r in examples.records],
    }


def _expected_kept(examples: ExampleSet, seg: dict[int, bytes]) -> list[tuple[str, bytes, bytes]]:
    return [
        (r.key, r.data, seg.get(n, _png(n)))
        for n, r in enumerate(examples.records)
        if not r.hidden and n not in seg
    ]


def _raw(ds) -> list[tuple[str, bytes, bytes]]:
    raw = ds.cast_column("picture", datasets.Image(decode=False)).cast_column(
        "seg", datasets.Image(decode=False)
    )
    return [(row["key"], row["picture"]["bytes"], row["seg"]["bytes"]) for row in raw]


def test_save_to_disk_dataset_dict(examples: ExampleSet, known_list: Path, tmp_path: Path) -> None:
    seg = _hidden_seg(examples)
    ds = datasets.Dataset.from_dict(_rows(examples, seg), features=_features())
    half = len(ds) // 2
    root = tmp_path / "saved"
    datasets.DatasetDict(
        {"train": ds.select(range(half)), "validation": ds.select(range(half, len(ds)))}
    ).save_to_disk(str(root))
    assert open_source(root).kind == "arrow"

    rows, clean_dir = _scan_and_clean(root, known_list, tmp_path)
    removed = {(r["source"], r["key"]) for r in rows if r["action"] == "remove"}
    assert len(removed) == len(examples.hidden_keys) + 2
    # The image column is found by its HF feature ("picture", not a known name); the second
    # Image column is hashed too, and the match says it was that one.
    flagged = [r for r in rows if r["action"] == "remove"]
    seg_keys = {examples.records[n].key for n in seg}
    for r in flagged:
        assert r["matches"][0]["part"] == ("seg" if r["key"] in seg_keys else r["location"])

    loaded = datasets.load_from_disk(str(clean_dir))
    assert set(loaded) == {"train", "validation"}
    expected = _expected_kept(examples, seg)
    assert _raw(loaded["train"]) + _raw(loaded["validation"]) == expected
    assert loaded["train"].features == ds.features
    assert isinstance(loaded["train"][0]["picture"], Image.Image)  # still decodes
    info = json.loads((clean_dir / "train" / "dataset_info.json").read_text())
    assert info["features"]["picture"] == {"_type": "Image"}
    state = json.loads((clean_dir / "train" / "state.json").read_text())
    original = json.loads((root / "train" / "state.json").read_text())
    assert state["_fingerprint"] != original["_fingerprint"]


def test_datasets_cache_arrow_files(examples: ExampleSet, known_list: Path, tmp_path: Path):
    """``load_dataset``'s cache: ``.arrow`` files given as a glob."""
    seg = _hidden_seg(examples)
    ds = datasets.Dataset.from_dict(_rows(examples, seg), features=_features())
    ds.to_parquet(str(tmp_path / "src.parquet"))
    cache = tmp_path / "cache"
    loaded = datasets.load_dataset(
        "parquet", data_files=str(tmp_path / "src.parquet"), split="train", cache_dir=str(cache)
    )
    arrows = sorted(cache.rglob("*.arrow"))
    assert arrows and loaded.cache_files
    pattern = str(arrows[0].parent / "*.arrow")
    rows, clean_dir = _scan_and_clean(pattern, known_list, tmp_path)
    assert sum(r["action"] == "remove" for r in rows) == len(examples.hidden_keys) + 2
    cleaned = datasets.Dataset.from_file(str(clean_dir / arrows[0].name))
    assert _raw(cleaned) == _expected_kept(examples, seg)


def _hub_snapshot(root: Path) -> Path:
    (root / "data").mkdir(parents=True)
    (root / "README.md").write_text("---\nlicense: cc0-1.0\n---\n# a benign test set\n")
    (root / ".gitattributes").write_text("*.parquet filter=lfs diff=lfs merge=lfs -text\n")
    return root / "data" / "train-00000-of-00001.parquet"


def _load_parquet(folder: Path, cache: Path):
    return datasets.load_dataset(
        "parquet", data_files=str(folder / "data" / "*.parquet"), split="train",
        cache_dir=str(cache),
    )  # fmt: skip


def test_hub_snapshot_to_parquet_from_bytes(
    examples: ExampleSet, known_list: Path, tmp_path: Path
) -> None:
    seg = _hidden_seg(examples)
    root = tmp_path / "snapshot"
    ds = datasets.Dataset.from_dict(_rows(examples, seg), features=_features())
    ds.to_parquet(str(_hub_snapshot(root)))
    rows, clean_dir = _scan_and_clean(root, known_list, tmp_path)
    assert sum(r["action"] == "remove" for r in rows) == len(examples.hidden_keys) + 2
    assert sorted(p.name for p in clean_dir.rglob("*")) == ["data", "train-00000-of-00001.parquet"]
    cleaned = _load_parquet(clean_dir, tmp_path / "cache")
    assert _raw(cleaned) == _expected_kept(examples, seg)
    assert isinstance(cleaned[0]["picture"], Image.Image)


def test_hub_snapshot_to_parquet_from_files(
    examples: ExampleSet, known_list: Path, tmp_path: Path
) -> None:
    """Path-only Image cells (absolute paths, as to_parquet writes them) read from inside the
    dataset's folder; the cleaned Parquet keeps the kept rows' paths."""
    root = tmp_path / "from-files"
    parquet = root / "train.parquet"
    images = root / "images"
    images.mkdir(parents=True)
    paths = []
    for r in examples.records:
        (images / f"{r.key}.{r.ext}").write_bytes(r.data)
        paths.append(str(images / f"{r.key}.{r.ext}"))
    ds = datasets.Dataset.from_dict(
        {"key": [r.key for r in examples.records], "picture": paths}
    ).cast_column("picture", datasets.Image())
    ds.to_parquet(str(parquet))
    assert pq.read_table(parquet).column("picture").to_pylist()[0]["bytes"] is None
    # The folder holds images too: the Parquet file is the SOURCE (its folder is the dataset's).
    both = run_cli("scan", root, "--list", known_list, "--out", tmp_path / "o")
    _one_line_error(both, "holds both image files and dataset files (train.parquet)")
    rows, clean_dir = _scan_and_clean(parquet, known_list, tmp_path)
    assert all(r["error"] is None for r in rows)
    assert {r["key"] for r in rows if r["action"] == "remove"} == examples.hidden_keys
    cleaned = datasets.load_dataset(
        "parquet", data_files=str(clean_dir / parquet.name), split="train",
        cache_dir=str(tmp_path / "cache"),
    )  # fmt: skip
    kept = [(r.key, r.data) for r in examples.records if not r.hidden]
    raw = cleaned.cast_column("picture", datasets.Image(decode=False))
    assert [(row["key"], Path(row["picture"]["path"]).read_bytes()) for row in raw] == kept
    assert cleaned[0]["picture"].size == Image.open(io.BytesIO(kept[0][1])).size


def test_image_paths_leaving_the_dataset_folder_are_never_read(
    examples: ExampleSet, known_list: Path, tmp_path: Path
) -> None:
    known = next(r.data for r in examples.records if r.hidden == "chelsea/exact")
    outside = tmp_path / "outside.jpg"
    outside.write_bytes(known)  # would be removed if it were read
    root = tmp_path / "ds"
    (root / "img").mkdir(parents=True)
    (root / "img" / "ok.jpg").write_bytes(examples.records[0].data)
    os.symlink(outside, root / "img" / "link.jpg")
    paths = [
        "img/ok.jpg",
        str(outside),
        "../outside.jpg",
        "img/../../outside.jpg",
        "img/link.jpg",
        "/etc/passwd",
        "img/missing.jpg",
    ]
    # A hostile file is crafted, not written by datasets: HF's schema, cells set by hand.
    schema = datasets.Features({"picture": datasets.Image()}).arrow_schema
    cells = pa.array([{"bytes": None, "path": p} for p in paths], schema.field("picture").type)
    pq.write_table(pa.Table.from_arrays([cells], schema=schema), root / "train.parquet")
    scan_dir = tmp_path / "scan"
    safeset.scan([root / "train.parquet"], [known_list], scan_dir, engine=LocalEngine(1),
                 progress=False)  # fmt: skip
    rows = all_rows(scan_dir)
    assert rows[0]["error"] is None and rows[0]["md5"]
    errors = [r["error"] for r in rows[1:]]
    assert [e.split(":")[1].strip() for e in errors] == [
        "image path leaves the dataset folder",
        "image path leaves the dataset folder",
        "image path leaves the dataset folder",
        "image path links outside the dataset folder",
        "image path leaves the dataset folder",
        "image file not found in the dataset folder",
    ]
    assert all(r["md5"] is None and r["action"] == "review" for r in rows[1:])


def test_split_folders_written_by_shardwriter(
    examples: ExampleSet, known_list: Path, tmp_path: Path
) -> None:
    """train/*.tar and val/*.tar with two-image samples (jpg + seg.png), from ShardWriter."""
    seg = _hidden_seg(examples)
    root = tmp_path / "splits"
    half = len(examples.records) // 2
    splits = {"train": range(half), "val": range(half, len(examples.records))}
    for split, indexes in splits.items():
        (root / split).mkdir(parents=True)
        with wds.ShardWriter(str(root / split / "shard-%06d.tar"), maxcount=20, verbose=0) as w:
            for n in indexes:
                r = examples.records[n]
                w.write({"__key__": r.key, r.ext: r.data, "seg.png": seg.get(n, _png(n)),
                         "txt": r.caption})  # fmt: skip
    source = open_source(root)
    assert source.kind == "webdataset" and len(source.files) > 2
    rows, clean_dir = _scan_and_clean(root, known_list, tmp_path)
    flagged = {r["key"]: r for r in rows if r["action"] == "remove"}
    assert set(flagged) == examples.hidden_keys | {examples.records[n].key for n in seg}
    for n in seg:
        key = examples.records[n].key
        assert flagged[key]["matches"][0]["part"] == f"{key}.seg.png"

    for split, indexes in splits.items():
        shards = sorted(str(p) for p in (clean_dir / split).glob("*.tar"))
        assert [Path(s).name for s in shards] == sorted(
            p.name for p in (root / split).glob("*.tar")
        )
        read = [
            (s["__key__"], s[examples.records[int(s["__key__"])].ext], s["seg.png"])
            for s in wds.WebDataset(shards, shardshuffle=False)
        ]
        expected = [
            (examples.records[n].key, examples.records[n].data, seg.get(n, _png(n)))
            for n in indexes
            if not examples.records[n].hidden and n not in seg
        ]
        assert read == expected
        decoded = next(iter(wds.WebDataset(shards, shardshuffle=False).decode("pil")))
        assert isinstance(decoded["seg.png"], Image.Image)


def test_brace_pattern_as_webdataset_expands_it(
    examples: ExampleSet, known_list: Path, tmp_path: Path
) -> None:
    shards = write_webdataset(examples, tmp_path / "shards", per_shard=25)
    count = len(list(shards.glob("*.tar")))
    pattern = str(shards / f"{{00000..{count - 1:05d}}}.tar")
    assert [s["__key__"] for s in wds.WebDataset(pattern, shardshuffle=False)] == [
        r.key for r in examples.records
    ]
    rows, _ = _scan_and_clean(pattern, known_list, tmp_path)
    assert len(rows) == len(examples.records)
    assert {r["key"] for r in rows if r["action"] == "remove"} == examples.hidden_keys
    missing = run_cli("scan", str(shards / "{00000..00009}.tar"), "--list", known_list, "--out",
                      tmp_path / "o")  # fmt: skip
    assert missing.returncode == 2
    assert missing.stderr.startswith(f"safeset: error: source not found: {shards}/0000")
    assert len(missing.stderr.splitlines()) == 1


def _one_line_error(result, fragment: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("safeset: error: ") and fragment in result.stderr


def test_folder_of_no_known_files_is_refused(tmp_path: Path, known_list: Path) -> None:
    odd = tmp_path / "odd"
    (odd / "sub").mkdir(parents=True)
    (odd / "README.md").write_text("# nothing here\n")
    (odd / "sub" / "notes.json").write_text("{}")
    (odd / "sub" / "blob.bin").write_bytes(os.urandom(64))
    result = run_cli("scan", odd, "--list", known_list, "--out", tmp_path / "o")
    _one_line_error(result, "holds no images and no dataset files")


def test_a_scan_that_reads_nothing_is_an_error(tmp_path: Path, known_list: Path) -> None:
    empty = tmp_path / "empty.parquet"
    pq.write_table(
        datasets.Dataset.from_dict({"image": []}, features=datasets.Features(
            {"image": datasets.Image()})).data.table, empty
    )  # fmt: skip
    result = run_cli("scan", empty, "--list", known_list, "--out", tmp_path / "o", "-q")
    _one_line_error(result, "the scan read no samples")
    (tmp_path / "no-rows").mkdir()  # shards that hold nothing, through the API this time
    pq.write_table(pq.read_table(empty), tmp_path / "no-rows" / "00000.parquet")
    with pytest.raises(safeset.SafesetError, match=r"the scan read no samples from .*no-rows"):
        safeset.scan([tmp_path / "no-rows"], [known_list], tmp_path / "p", progress=False,
                     engine=LocalEngine(1))  # fmt: skip


def test_version_and_short_help() -> None:
    from typer.testing import CliRunner

    from safeset.cli import app

    runner = CliRunner()
    version = runner.invoke(app, ["--version"])
    assert version.exit_code == 0 and version.stdout == f"safeset {safeset.__version__}\n"
    short = runner.invoke(app, ["-h"])
    assert short.exit_code == 0 and "scan" in short.stdout and "--version" in short.stdout
    scan_help = runner.invoke(app, ["scan", "-h"])
    assert scan_help.exit_code == 0 and "--list" in scan_help.stdout


def test_manifest_keys_read_as_text(examples: ExampleSet, known_list: Path, tmp_path: Path):
    """Keys such as 000003 stay text when the manifest is read as its metadata file says."""
    pd = pytest.importorskip("pandas")
    shards = write_webdataset(examples, tmp_path / "shards")
    safeset.scan([shards], [known_list], tmp_path / "scan", engine=LocalEngine(1),
                 options=safeset.ScanOptions(dihedral=True), progress=False)  # fmt: skip
    manifest = tmp_path / "scan" / "manifest.csv"
    read = pd.read_csv(manifest, dtype=str, keep_default_na=False)
    assert set(read["key"]) == examples.hidden_keys
    assert set(read["url"]) == {
        f"https://example.org/{r.key}.{r.ext}" for r in examples.records if r.hidden
    }
    guessed = pd.read_csv(manifest)
    assert guessed["key"].dtype.kind == "i"  # what the metadata file is there to prevent
    meta = json.loads((tmp_path / "scan" / "manifest.csv-metadata.json").read_text())
    columns = meta["tableSchema"]["columns"]
    assert [c["name"] for c in columns] == list(read.columns)
    assert {c["name"] for c in columns if c["datatype"] != "string"} == {"distance"}


def test_dataset_files_linking_outside_are_refused_but_hub_cache_links_are_not(
    examples: ExampleSet, known_list: Path, tmp_path: Path
) -> None:
    outside = write_webdataset(examples, tmp_path / "elsewhere")
    linked = tmp_path / "linked"
    (linked / "train").mkdir(parents=True)
    os.symlink(outside / "00000.tar", linked / "train" / "00000.tar")
    result = run_cli("scan", linked, "--list", known_list, "--out", tmp_path / "o")
    _one_line_error(result, "is a link leading outside the dataset folder")

    # The hub cache: snapshots/REV/data/*.parquet link to ../../../blobs/SHA in the repo.
    repo = tmp_path / "hub" / "datasets--someone--benign"
    (repo / "blobs").mkdir(parents=True)
    snapshot = repo / "snapshots" / "0123abc"
    (snapshot / "data").mkdir(parents=True)
    features = datasets.Features({"key": datasets.Value("string"), "image": datasets.Image()})
    ds = datasets.Dataset.from_dict(
        {"key": [r.key for r in examples.records],
         "image": [{"bytes": r.data, "path": None} for r in examples.records]},
        features=features,
    )  # fmt: skip
    ds.to_parquet(str(repo / "blobs" / "5f3e"))
    (snapshot / "README.md").write_text("# benign\n")
    os.symlink("../../../blobs/5f3e", snapshot / "data" / "train-00000-of-00001.parquet")
    rows, clean_dir = _scan_and_clean(snapshot, known_list, tmp_path)
    assert {r["key"] for r in rows if r["action"] == "remove"} == examples.hidden_keys
    cleaned = _load_parquet(clean_dir, tmp_path / "cache")
    assert [row["key"] for row in cleaned] == sorted(examples.distractor_keys)


def test_broken_arrow_files_end_in_error_rows(
    examples: ExampleSet, known_list: Path, tmp_path: Path
) -> None:
    features = datasets.Features({"key": datasets.Value("string"), "image": datasets.Image()})
    ds = datasets.Dataset.from_dict(
        {"key": [r.key for r in examples.records[:30]],
         "image": [{"bytes": r.data, "path": None} for r in examples.records[:30]]},
        features=features,
    )  # fmt: skip
    saved = tmp_path / "saved"
    ds.save_to_disk(str(saved), num_shards=3)
    arrows = sorted(saved.glob("*.arrow"))
    (saved / arrows[1].name).write_bytes(b"ARROW1 not really")
    blob = arrows[2].read_bytes()
    arrows[2].write_bytes(blob[: len(blob) // 2])  # cut inside a batch
    scan_dir = tmp_path / "scan"
    safeset.scan([saved], [known_list], scan_dir, engine=LocalEngine(1), progress=False,
                 options=safeset.ScanOptions(dihedral=True))  # fmt: skip
    rows = all_rows(scan_dir)
    by_file: dict[str, list] = {}
    for r in rows:
        by_file.setdefault(Path(r["source"]).name, []).append(r)
    assert [r["error"] for r in by_file[arrows[0].name]] == [None] * 10
    (broken,) = by_file[arrows[1].name]
    assert broken["error"].startswith("not a readable Arrow file") and broken["action"] == "review"
    (cut,) = by_file[arrows[2].name]
    assert cut["error"].startswith(("corrupt Arrow batches", "not a readable Arrow file"))
    counts = safeset.clean([saved], scan_dir, tmp_path / "clean", keep_review=True, progress=False)
    assert counts.unreadable == 2
    kept = datasets.load_from_disk(str(tmp_path / "clean"))
    assert kept["key"] == [r.key for r in examples.records[:10] if not r.hidden]
