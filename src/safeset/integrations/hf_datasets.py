"""Hugging Face ``datasets``: audit a Dataset, get the kept rows and a verdict per row.

    from safeset import Auditor
    from safeset.integrations.hf_datasets import audit

    kept, verdicts = audit(ds, Auditor(lists=["lists/iwf"]))

Rows are read as Arrow batches with the image column's raw ``{bytes, path}`` (nothing is
decoded to pixels twice, nothing is written), and the kept dataset is ``ds.select(kept_rows)``:
an indices mapping over the same data, so no copy of any image, flagged or not, is made.

``map`` users can have the verdicts as columns instead:

    table = ds.cast_column("image", Image(decode=False)).map(
        verdict_columns(auditor, "image"), batched=True, remove_columns=ds.column_names
    )

(``remove_columns`` matters: ``map`` writes what it returns to a cache file, and a cache that
held the image column would hold the flagged images.)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from safeset.api import Auditor, Verdict
from safeset.errors import SafesetError

CAPTION_COLUMNS = ("caption", "text", "txt")


def image_column(dataset: Any) -> str:
    """The dataset's image column: the first feature of type ``datasets.Image``."""
    from datasets import Image

    for name, feature in dataset.features.items():
        if isinstance(feature, Image):
            return name
    raise SafesetError(
        f"no Image feature among the dataset's columns ({', '.join(dataset.column_names)}); "
        "pass image_column="
    )


def audit(
    dataset: Any,
    auditor: Auditor,
    *,
    image_column_name: str | None = None,
    caption_column: str | None = None,
    batch_size: int = 256,
) -> tuple[Any, list[Verdict]]:
    """``(dataset.select(kept rows), one Verdict per row in order)``; a row is kept when its
    verdict is ``keep``."""
    column = image_column_name or image_column(dataset)
    caption = caption_column or next(
        (c for c in CAPTION_COLUMNS if c in dataset.column_names), None
    )
    wanted = [c for c in (column, caption) if c]
    verdicts: list[Verdict] = []
    arrow = dataset.select_columns(wanted).with_format("arrow")
    for batch in arrow.iter(batch_size=batch_size):
        verdicts += auditor.check(_items(batch.to_pydict(), column, caption, len(verdicts)))
    kept = [i for i, v in enumerate(verdicts) if not v.flagged]
    return dataset.select(kept), verdicts


def verdict_columns(
    auditor: Auditor, image_column_name: str, caption_column: str | None = None
) -> Callable[[Mapping[str, list[Any]]], dict[str, list[Any]]]:
    """A function for ``Dataset.map(batched=True)`` over a column cast to
    ``Image(decode=False)``: ``safeset_action`` and ``safeset_reasons`` per row."""

    def columns(batch: Mapping[str, list[Any]]) -> dict[str, list[Any]]:
        verdicts = auditor.check(_items(batch, image_column_name, caption_column, 0))
        return {
            "safeset_action": [v.action for v in verdicts],
            "safeset_reasons": [list(v.reasons) for v in verdicts],
        }

    return columns


def _items(
    batch: Mapping[str, list[Any]], column: str, caption: str | None, first: int
) -> list[dict[str, Any]]:
    images = batch[column]
    captions = batch[caption] if caption else [None] * len(images)
    return [
        {"image": image, "caption": text, "key": str(first + n)}
        for n, (image, text) in enumerate(zip(images, captions, strict=True))
    ]
