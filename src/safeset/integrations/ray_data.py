"""Ray Data: a callable class for ``Dataset.map_batches`` that adds safeset's verdict.

    import ray
    from safeset.integrations.ray_data import AuditBatches

    ds = ray.data.read_parquet("laion/")                    # an image-bytes column
    audited = ds.map_batches(
        AuditBatches, fn_constructor_kwargs={"lists": ["lists/iwf"]},
        batch_format="pyarrow", concurrency=4,
    )
    clean = audited.filter(lambda row: row["safeset_action"] == "keep")

Each actor builds its ``Auditor`` (lists, indexes, models) once. Every row gains
``safeset_action`` and ``safeset_reasons``; a flagged row's image bytes are blanked (null) in
the batch it returns, so no later stage, cache or spill of this pipeline holds them again.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pyarrow as pa

from safeset.api import Auditor, ListLike
from safeset.errors import SafesetError

CAPTION_COLUMNS = ("caption", "text", "txt")
IMAGE_COLUMNS = ("image", "jpg", "png", "bytes", "image_bytes")


class AuditBatches:
    def __init__(
        self,
        lists: Iterable[ListLike],
        *,
        image_column: str | None = None,
        caption_column: str | None = None,
        redact: bool = True,
        **auditor_options: Any,
    ) -> None:
        self.auditor = Auditor(lists, **auditor_options)
        self.image_column = image_column
        self.caption_column = caption_column
        self.redact = redact

    def __call__(self, batch: pa.Table) -> pa.Table:
        if not isinstance(batch, pa.Table):
            batch = pa.table(batch)
        column = self.image_column or next(
            (c for c in IMAGE_COLUMNS if c in batch.schema.names), None
        )
        if column is None:
            raise SafesetError(f"no image column among {batch.schema.names}; pass image_column=")
        caption = self.caption_column or next(
            (c for c in CAPTION_COLUMNS if c in batch.schema.names), None
        )
        images = batch.column(column).to_pylist()
        captions = batch.column(caption).to_pylist() if caption else [None] * len(images)
        verdicts = self.auditor.check(
            [{"image": i, "caption": c} for i, c in zip(images, captions, strict=True)]
        )
        flagged = pa.array([v.flagged for v in verdicts])
        if self.redact and any(v.flagged for v in verdicts):
            at = batch.schema.get_field_index(column)
            blank = pa.nulls(len(images), batch.schema.field(at).type)
            batch = batch.set_column(
                at, column, pa.compute.if_else(flagged, blank, batch.column(column))
            )
        batch = batch.append_column("safeset_action", pa.array([v.action for v in verdicts]))
        return batch.append_column(
            "safeset_reasons", pa.array([list(v.reasons) for v in verdicts], pa.list_(pa.string()))
        )
