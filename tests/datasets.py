"""Writing the stand-in examples in every source format the scanner reads."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from safeset.examples import ExampleSet, write_folder, write_parquet, write_webdataset

FORMATS = ("folder", "webdataset", "parquet", "parquet-hf")


def write_hf_parquet(examples: ExampleSet, path: Path) -> Path:
    """Hugging Face ``datasets`` layout: an ``image`` struct {bytes, path}, no key column."""
    image = pa.array(
        [{"bytes": r.data, "path": f"{r.key}.{r.ext}"} for r in examples.records],
        pa.struct([("bytes", pa.binary()), ("path", pa.string())]),
    )
    table = pa.table({"image": image, "text": [r.caption for r in examples.records]})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, row_group_size=20)
    return path


def write_dataset(examples: ExampleSet, fmt: str, root: Path) -> Path:
    """The dataset in ``fmt`` under ``root``; returns the SOURCE argument to scan."""
    if fmt == "folder":
        return write_folder(examples, root / "images")
    if fmt == "webdataset":
        return write_webdataset(examples, root / "shards")
    if fmt == "parquet":
        return write_parquet(examples, root / "pq" / "data.parquet")
    if fmt == "parquet-hf":
        return write_hf_parquet(examples, root / "hf" / "train.parquet")
    raise ValueError(fmt)
