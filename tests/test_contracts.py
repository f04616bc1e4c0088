"""What every registered hash type and every registered format must do, checked for each.

A new type or format joins these tests by being registered; a format without a dataset writer
here fails ``test_every_format_has_a_contract_test``, so none slips through untested.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

import safeset
from safeset.engines import LocalEngine
from safeset.examples import ExampleSet, write_folder, write_parquet, write_webdataset
from safeset.formats import SourceOptions, formats, open_source
from safeset.signals import (
    BytesHashType,
    ComputeOptions,
    HashType,
    PixelHashType,
    hash_types,
)
from safeset.signals.image import ImageView

from . import hostile
from .support import all_rows, write_hf_parquet
from .urlserver import ImageServer, serving

rng = np.random.default_rng(5)


def _photo_bytes() -> bytes:
    buf = io.BytesIO()
    hostile.photo((320, 240)).save(buf, "JPEG", quality=92)
    return buf.getvalue()


def _values(hash_cls: type[HashType], data: bytes, **options: bool):
    if issubclass(hash_cls, BytesHashType):
        return [hash_cls().compute(data)]
    assert issubclass(hash_cls, PixelHashType)
    return hash_cls().compute(ImageView(data), ComputeOptions(**options))


@pytest.mark.parametrize("hash_cls", hash_types(), ids=lambda t: t.name)
def test_hash_type_contract(hash_cls: type[HashType], tmp_path: Path) -> None:
    data = _photo_bytes()
    (value, *_) = _values(hash_cls, data)
    assert len(value.value) == hash_cls.nbytes
    # Text form: its own hex parses back to it, in either case; bad text is refused without
    # echoing it (list contents are sensitive).
    assert hash_cls.parse(value.hex) == value.value == hash_cls.parse(value.hex.upper())
    for bad in (value.hex[:-2], value.hex[:-1] + "z"):
        with pytest.raises(ValueError) as err:
            hash_cls.parse(bad)
        assert bad not in str(err.value)
    assert hash_cls.distance(value.value, value.value) == 0
    # Result columns: named after the type, filled from its values.
    columns = hash_cls.columns([value])
    assert [f.name for f in hash_cls.fields()] == list(columns)
    assert columns[hash_cls.name] == value.hex
    # Index: finds the value among others at distance 0, before and after a save/load.
    others = rng.integers(0, 256, (500, hash_cls.nbytes), dtype=np.uint8)
    values = np.vstack([others[:250], np.frombuffer(value.value, np.uint8), others[250:]])
    query = np.frombuffer(value.value, np.uint8)[None]
    index = hash_cls.build_index(values)
    assert len(index) == 501
    rows, ids, dists = index.search(query, hash_cls.default_threshold)
    assert (250, 0) in set(zip(ids.tolist(), dists.tolist(), strict=True))
    index.save(tmp_path / "index")
    loaded = hash_cls.load_index(tmp_path / "index")
    assert [a.tolist() for a in loaded.search(query, hash_cls.default_threshold)] == [
        a.tolist() for a in (rows, ids, dists)
    ]


@pytest.mark.parametrize(
    "hash_cls", [t for t in hash_types() if issubclass(t, PixelHashType)], ids=lambda t: t.name
)
def test_pixel_type_variants_and_reference(hash_cls: type[PixelHashType]) -> None:
    data = _photo_bytes()
    dihedral = _values(hash_cls, data, dihedral=True)
    assert [v.variant for v in dihedral] == list(range(8))
    plain = _values(hash_cls, data)
    assert dihedral[0] == plain[0]  # variant 0 is the stored pixels either way
    exact = _values(hash_cls, data, exact=True)[0]
    assert hash_cls.distance(exact.value, plain[0].value) <= hash_cls.recheck_margin


# ---------------------------------------------------------------- formats

Writer = Callable[[ExampleSet, Path, ImageServer], Path]


def _url_table(examples: ExampleSet, root: Path, server: ImageServer) -> Path:
    server.images.update({f"{r.key}.{r.ext}": r.data for r in examples.records})
    path = root / "urls.csv"
    root.mkdir(parents=True, exist_ok=True)
    lines = ["url,caption,key"]
    lines += [
        f"{server.url(f'/img/{r.key}.{r.ext}')},{r.caption},{r.key}" for r in examples.records
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _arrow(examples: ExampleSet, root: Path, _: ImageServer) -> Path:
    """A ``datasets`` ``save_to_disk`` folder, written by ``datasets``."""
    import datasets

    features = datasets.Features({"key": datasets.Value("string"), "image": datasets.Image()})
    ds = datasets.Dataset.from_dict(
        {
            "key": [r.key for r in examples.records],
            "image": [{"bytes": r.data, "path": None} for r in examples.records],
        },
        features=features,
    )
    ds.save_to_disk(str(root / "saved"), max_shard_size="1MB")
    return root / "saved"


def _url_list(examples: ExampleSet, root: Path, server: ImageServer) -> Path:
    """img2dataset's ``txt`` input: one url a line."""
    server.images.update({f"{r.key}.{r.ext}": r.data for r in examples.records})
    root.mkdir(parents=True, exist_ok=True)
    path = root / "urls.txt"
    path.write_text("".join(f"{server.url(f'/img/{r.key}.{r.ext}')}\n" for r in examples.records))
    return path


WRITERS: dict[str, Writer] = {
    "folder": lambda ex, root, _: write_folder(ex, root / "images"),
    "webdataset": lambda ex, root, _: write_webdataset(ex, root / "shards", per_shard=20),
    "parquet": lambda ex, root, _: write_parquet(ex, root / "pq" / "data.parquet"),
    "urls": _url_table,
    "arrow": _arrow,
    "url-list": _url_list,
}


def test_every_format_has_a_contract_test() -> None:
    assert {f.name for f in formats()} <= set(WRITERS)


@pytest.fixture(scope="module")
def server() -> Iterator[ImageServer]:
    with serving({}) as s:
        yield s


def _snapshot(root: Path) -> dict[str, tuple[int, str]]:
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    return {
        str(p): (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest()) for p in files
    }


def _stored(source_arg: Path) -> list[tuple[str, bytes, list[bytes]]]:
    """Every sample's key, bytes and parts' bytes, as the format itself reads them."""
    source = open_source(source_arg)
    return [
        (s.key, s.load(), [p.load() for p in s.parts])
        for shard in source.shards("x")
        for s in shard.read()
    ]


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_format_contract(
    fmt: str, examples: ExampleSet, known_list: Path, server: ImageServer, tmp_path: Path
) -> None:
    source = WRITERS[fmt](examples, tmp_path / "data", server)
    assert open_source(source).kind == fmt
    # The stand-in list plus decoys that match nothing: none of them may reach any output.
    decoys = [os.urandom(16).hex() for _ in range(5)] + [os.urandom(32).hex() for _ in range(5)]
    listed = tmp_path / "list.txt"
    listed.write_text(
        known_list.read_text()
        + "".join(f"{'md5' if len(d) == 32 else 'pdq'} {d}\n" for d in decoys)
    )
    before = _snapshot(source)
    scan_dir, clean_dir = tmp_path / "scan", tmp_path / "clean"
    options = safeset.ScanOptions(dihedral=True)  # the examples hide rotated copies too
    safeset.scan(
        [source], [listed], scan_dir, options=options, engine=LocalEngine(2), progress=False
    )
    safeset.clean([source], scan_dir, clean_dir, keep_review=True, progress=False)

    # Invariant 2: the source is as it was.
    assert _snapshot(source) == before
    # Invariant 3: every sample not flagged remove, byte-identical with its parts, in order.
    removed = {r["key"] for r in all_rows(scan_dir) if r["action"] == "remove"}
    # (A folder's keys are relative paths: 0000/000001.png for the example keyed 000001; a url
    # list's are urls: http://127.0.0.1:PORT/img/000001.png.)
    assert {k.rsplit("/", 1)[-1].split(".")[0] for k in removed} == examples.hidden_keys
    kept = [s for s in _stored(source) if s[0] not in removed]
    cleaned = clean_dir / source.name if source.is_file() else clean_dir
    assert _stored(cleaned) == kept
    # Written files get the permissions any new file gets here (not a temporary file's 0600).
    umask = os.umask(0)
    os.umask(umask)
    modes = {p.stat().st_mode & 0o777 for d in (clean_dir, scan_dir) for p in d.rglob("*.*")}
    assert modes == {0o666 & ~umask}
    # Invariants 1 and 5: no removed sample's bytes, no decoy entry, in any output file.
    flagged = [r.data for r in examples.records if r.hidden]
    probes = [d[len(d) // 2 : len(d) // 2 + 64] for d in flagged]
    written = [p for d in (scan_dir, clean_dir) for p in d.rglob("*") if p.is_file()]
    assert written
    for path in written:
        blob = path.read_bytes()
        assert not any(p in blob for p in probes), path
        for decoy in decoys:
            assert decoy.encode() not in blob.lower() and bytes.fromhex(decoy) not in blob, path


def test_hugging_face_parquet_layout_is_read_as_parquet(examples: ExampleSet, tmp_path: Path):
    path = write_hf_parquet(examples, tmp_path / "train.parquet")
    source = open_source(path, SourceOptions())
    assert source.kind == "parquet"
    assert [s[1] for s in _stored(path)] == [r.data for r in examples.records]
