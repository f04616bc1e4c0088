"""safeset extended from outside its package, as a third party would: a new perceptual hash
type and a new dataset format, registered here, flow through scan, results, manifest and clean
without any edit inside ``src/safeset``."""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import safeset
from safeset import formats, signals
from safeset.engines import LocalEngine
from safeset.examples import ExampleSet
from safeset.formats import Format, Shard, Source, Target
from safeset.formats.clean import Decisions, atomic_output
from safeset.sample import Sample
from safeset.signals import ComputeOptions, HashValue, PixelHashType
from safeset.signals.image import ImageView

from .support import all_rows


class AverageHash(PixelHashType):
    """The classic 64-bit average hash: an 8x8 grey thumbnail thresholded at its mean."""

    name = "ahash"
    nbytes = 8
    default_threshold = 6

    def compute(self, image: ImageView, options: ComputeOptions) -> list[HashValue]:
        grey = np.asarray(image.pixels().convert("L").resize((8, 8)), dtype=np.float32)
        return [HashValue(np.packbits(grey > grey.mean()).tobytes())]


@dataclass(frozen=True)
class JsonlShard(Shard):
    path: str

    def read(self) -> Iterator[Sample]:
        with open(self.path, "rb") as f:
            for index, line in enumerate(f):
                record = json.loads(line)
                data = base64.b64decode(record["image"])
                yield Sample(
                    key=record["key"],
                    source=self.path,
                    location=f"line {index + 1}",
                    index=index,
                    load=lambda data=data: data,
                    caption=record.get("caption"),
                )


class JsonlSource(Source):
    kind = "jsonl"

    def __init__(self, files: list[Path]) -> None:
        self.files = files

    def shards(self, prefix: str) -> list[Shard]:
        return [JsonlShard(f"{prefix}-{n:06d}", str(p)) for n, p in enumerate(self.files)]

    def roots(self) -> list[Path]:
        return list(self.files)

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "files": [str(p.resolve()) for p in self.files]}

    def clean(self, decisions: Decisions, out: Path) -> None:
        for path, shard in zip(self.files, self.shards("clean"), strict=True):
            lines = path.read_bytes().splitlines(keepends=True)
            with atomic_output(out / path.name) as f:
                for sample, line in zip(shard.read(), lines, strict=True):
                    scanned = decisions.kept(str(path), sample.index, sample.location)
                    if scanned is not None:
                        decisions.verify(scanned, str(path), [(sample.location, sample.load())])
                        f.write(line)
            decisions.counts.files += 1


class JsonlFormat(Format):
    name = "jsonl"

    @classmethod
    def detect(cls, target: Target) -> Source | None:
        if target.folder is None and all(f.suffix == ".jsonl" for f in target.files):
            return JsonlSource(target.files)
        return None


@pytest.fixture(autouse=True, scope="module")
def registered() -> Iterator[None]:
    # Registries are process-wide: put them back as they were for the other tests.
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(signals, "_HASH_TYPES", dict(signals._HASH_TYPES))
        mp.setattr(formats, "_FORMATS", list(formats._FORMATS))
        signals.register(AverageHash)
        formats.register(JsonlFormat)
        yield


def _ahash(data: bytes) -> bytes:
    return AverageHash().compute(ImageView(data), ComputeOptions())[0].value


def test_a_new_hash_type_and_format_flow_through_scan_and_clean(
    examples: ExampleSet, tmp_path: Path
) -> None:
    dataset = tmp_path / "data.jsonl"
    with open(dataset, "w") as f:
        for r in examples.records:
            line = {"key": r.key, "image": base64.b64encode(r.data).decode(), "caption": r.caption}
            f.write(json.dumps(line) + "\n")
    known = {name: io.BytesIO() for name in examples.known}
    for name, img in examples.known.items():
        img.save(known[name], "PNG")
    listed = [_ahash(b.getvalue()) for b in known.values()]
    hash_list = tmp_path / "ahashes.txt"
    hash_list.write_text("".join(f"ahash {v.hex()}\n" for v in listed))

    summary = safeset.scan(
        [dataset], [hash_list], tmp_path / "scan", engine=LocalEngine(2), progress=False
    )

    # What the type itself says, computed here: every record within its threshold of an entry.
    def near(data: bytes) -> bool:
        value = int.from_bytes(_ahash(data))
        return any((value ^ int.from_bytes(v)).bit_count() <= 6 for v in listed)

    expected = {r.key for r in examples.records if near(r.data)}
    exact_copies = {r.key for r in examples.records if r.hidden and r.hidden.endswith("/png")}
    assert exact_copies <= expected  # the lossless copies at least
    rows = {r["key"]: r for r in all_rows(tmp_path / "scan")}
    assert {k for k, r in rows.items() if r["action"] == "remove"} == expected
    assert all(len(r["ahash"]) == 16 for r in rows.values())  # its result column, hex
    assert {m["signal_type"] for k in expected for m in rows[k]["matches"]} == {"ahash"}
    assert summary["matches"] == {"ahashes": {"ahash": len(expected)}}
    with open(tmp_path / "scan" / "manifest.csv", newline="") as f:
        manifest = {row["key"]: row for row in csv.DictReader(f)}
    assert set(manifest) == expected
    assert {row["matched_signal_type"] for row in manifest.values()} == {"ahash"}

    counts = safeset.clean([dataset], tmp_path / "scan", tmp_path / "clean", progress=False)
    kept = [
        line
        for line, r in zip(dataset.read_bytes().splitlines(True), examples.records, strict=True)
        if r.key not in expected
    ]
    assert (tmp_path / "clean" / "data.jsonl").read_bytes() == b"".join(kept)
    assert (counts.kept, counts.left_out) == (len(kept), len(expected))
