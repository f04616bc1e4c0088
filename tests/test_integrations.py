"""The public API against the CLI, and the adapters inside real pipelines: Hugging Face
``datasets``, Ray Data and webdataset, each driven by that library itself."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pyarrow as pa
import pytest

import safeset
from safeset.examples import ExampleSet, write_webdataset

from .support import all_rows, run_cli


def _items(examples: ExampleSet) -> list[dict]:
    return [
        {
            "image": r.data,
            "caption": r.caption,
            "key": r.key,
            "url": f"https://example.org/{r.key}.{r.ext}",
        }
        for r in examples.records
    ]


def _entry_lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line and not line.startswith("#")]


def _decision(action: str, reasons, matches) -> tuple:
    return action, tuple(reasons), tuple((m[0], m[1], m[2], m[3], m[4]) for m in matches)


def test_api_and_cli_give_identical_verdicts(
    examples: ExampleSet, known_list: Path, tmp_path: Path
) -> None:
    shards = write_webdataset(examples, tmp_path / "shards")
    result = run_cli(
        "scan", shards, "--list", known_list, "--out", tmp_path / "scan", "--dihedral", "-q"
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    cli = {
        r["key"]: _decision(
            r["action"],
            r["reasons"],
            [
                (m["list"], m["entry"], m["signal_type"], m["distance"], m["variant"])
                for m in r["matches"]
            ],
        )
        for r in all_rows(tmp_path / "scan")
    }
    auditor = safeset.Auditor([known_list], dihedral=True)
    api = {
        v.key: _decision(
            v.action,
            v.reasons,
            [(m.list_name, m.entry, m.signal_type, m.distance, m.variant) for m in v.matches],
        )
        for v in auditor.check(_items(examples))
    }
    assert api == cli
    assert sum(d[0] == "remove" for d in api.values()) == len(examples.hidden_keys)


def test_verdicts_name_lists_but_never_their_entries(examples: ExampleSet, known_list: Path):
    auditor = safeset.Auditor([known_list])
    entries = [line.split()[1] for line in _entry_lines(known_list)]
    assert len(entries) == 10
    shown = repr(auditor) + repr(auditor.check(_items(examples)[:20])) + repr(auditor.lists)
    assert not any(e in shown.lower() for e in entries)


def test_a_hash_list_built_in_memory_matches_like_its_file(
    examples: ExampleSet, known_list: Path
) -> None:
    lines = [line.split() for line in _entry_lines(known_list)]
    by_type: dict[str, list[str]] = {}
    for type_name, value in lines:
        by_type.setdefault(type_name, []).append(value)
    in_memory = safeset.HashList.from_hashes("known", by_type)
    from_file = safeset.Auditor([known_list]).check(_items(examples))
    from_memory = safeset.Auditor([in_memory]).check(_items(examples))
    assert [v.action for v in from_memory] == [v.action for v in from_file]
    with pytest.raises(safeset.SafesetError, match="pdq entry 2: pdq hash must be 64 hex") as err:
        safeset.HashList.from_hashes("bad", {"pdq": [by_type["pdq"][0], "abc123"]})
    assert "abc123" not in str(err.value)


def test_hugging_face_datasets(examples: ExampleSet, known_list: Path, tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    from safeset.integrations.hf_datasets import audit, verdict_columns

    features = datasets.Features({"image": datasets.Image(), "text": datasets.Value("string")})
    ds = datasets.Dataset.from_dict(
        {
            "image": [{"bytes": r.data, "path": None} for r in examples.records],
            "text": [r.caption for r in examples.records],
        },
        features=features,
    )
    ds.save_to_disk(tmp_path / "ds")
    ds = datasets.load_from_disk(str(tmp_path / "ds"))
    auditor = safeset.Auditor([known_list], dihedral=True)

    kept, verdicts = audit(ds, auditor)
    hidden = [r.hidden is not None for r in examples.records]
    assert [v.flagged for v in verdicts] == hidden
    raw = kept.cast_column("image", datasets.Image(decode=False))
    assert [row["image"]["bytes"] for row in raw] == [
        r.data for r in examples.records if not r.hidden
    ]
    assert kept.features == ds.features  # still decodes to PIL as before
    # No file the audit left beside the dataset holds a flagged image.
    flagged = [r.data[len(r.data) // 2 :][:64] for r in examples.records if r.hidden]
    for path in (tmp_path / "ds").rglob("*"):
        if path.is_file() and path.name.startswith(("cache-", "indices-")):
            assert not any(p in path.read_bytes() for p in flagged), path

    table = ds.cast_column("image", datasets.Image(decode=False)).map(
        verdict_columns(auditor, "image", "text"), batched=True, remove_columns=ds.column_names
    )
    assert table["safeset_action"] == [v.action for v in verdicts]


@pytest.mark.ray
def test_ray_data_map_batches(examples: ExampleSet, known_list: Path) -> None:
    ray = pytest.importorskip("ray")
    from safeset.integrations.ray_data import AuditBatches

    table = pa.table(
        {
            "key": [r.key for r in examples.records],
            "image": pa.array([r.data for r in examples.records], pa.binary()),
            "caption": [r.caption for r in examples.records],
        }
    )
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        audited = ray.data.from_arrow(table).map_batches(
            AuditBatches,
            fn_constructor_kwargs={"lists": [str(known_list)], "dihedral": True},
            batch_format="pyarrow",
            batch_size=32,
            concurrency=1,
        )
        rows = audited.take_all()
    finally:
        ray.shutdown()
    by_key = {row["key"]: row for row in rows}
    assert len(by_key) == len(examples.records)
    for r in examples.records:
        row = by_key[r.key]
        assert row["safeset_action"] == ("remove" if r.hidden else "keep")
        # A flagged row's image is blanked in what flows on; kept rows are untouched.
        assert row["image"] == (None if r.hidden else r.data)


def test_webdataset_pipeline_stage(examples: ExampleSet, known_list: Path, tmp_path: Path) -> None:
    wds = pytest.importorskip("webdataset")
    from safeset.integrations.webdataset import AuditStage

    pattern = str(tmp_path / "part-%05d.tar")
    with wds.ShardWriter(pattern, maxcount=40) as sink:
        for r in examples.records:
            sink.write(
                {
                    "__key__": r.key,
                    r.ext: r.data,
                    "txt": r.caption,
                    "json": {"url": f"https://x/{r.key}"},
                }
            )
    shards = sorted(str(p) for p in tmp_path.glob("part-*.tar"))
    assert len(shards) > 1
    stage = AuditStage(safeset.Auditor([known_list], dihedral=True), batch_size=16)
    pipeline = wds.DataPipeline(
        wds.SimpleShardList(shards), wds.tarfile_to_samples(), stage, wds.decode("pil")
    )
    kept = [(s["__key__"], s.get("jpg", s.get("png")).size) for s in pipeline]
    expected = [r for r in examples.records if not r.hidden]
    assert [k for k, _ in kept] == [r.key for r in expected]
    assert sorted(v.key for v in stage.flagged) == sorted(examples.hidden_keys)
    assert all(v.action == "remove" for v in stage.flagged)


def test_webdataset_stage_hashes_every_member(tmp_path: Path) -> None:
    """A segmentation-style sample: its second image is the listed one."""
    wds = pytest.importorskip("webdataset")
    from PIL import Image

    from safeset.integrations.webdataset import AuditStage

    secret, photo = io.BytesIO(), io.BytesIO()
    Image.new("RGB", (40, 30), (10, 200, 30)).save(secret, "PNG")
    Image.new("RGB", (40, 30), (200, 10, 30)).save(photo, "JPEG")
    listed = tmp_path / "l.txt"
    listed.write_text(f"md5 {hashlib.md5(secret.getvalue()).hexdigest()}\n")
    with wds.TarWriter(str(tmp_path / "seg.tar")) as sink:
        sink.write({"__key__": "a", "jpg": photo.getvalue(), "seg.png": secret.getvalue()})
        sink.write({"__key__": "b", "jpg": photo.getvalue(), "seg.png": photo.getvalue()})
    stage = AuditStage(safeset.Auditor([listed]))
    pipeline = wds.DataPipeline(
        wds.SimpleShardList([str(tmp_path / "seg.tar")]), wds.tarfile_to_samples(), stage
    )
    assert [s["__key__"] for s in pipeline] == ["b"]
    (verdict,) = stage.flagged
    assert [(m.signal_type, m.part) for m in verdict.matches] == [("md5", "a.seg.png")]
