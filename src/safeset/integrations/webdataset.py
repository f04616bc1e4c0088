"""webdataset: a pipeline stage that drops flagged samples and reports them.

    import webdataset as wds
    from safeset import Auditor
    from safeset.integrations.webdataset import AuditStage

    stage = AuditStage(Auditor(lists=["lists/iwf"]))
    pipeline = wds.DataPipeline(
        wds.SimpleShardList("shards/{00000..00009}.tar"), wds.tarfile_to_samples(),
        stage, wds.decode("pil"), wds.to_tuple("jpg", "txt"),
    )
    for image, caption in pipeline: ...
    stage.flagged  # one Verdict per dropped sample, keyed by its __key__

It sits before ``decode``: it needs the stored bytes, and every member of a sample (a second
image, a file of a type it does not know) is hashed, as ``safeset scan`` does.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from safeset.api import Auditor, Verdict
from safeset.formats.base import IMAGE_EXTENSIONS
from safeset.sample import Part, Sample


class AuditStage:
    """Called with an iterator of webdataset samples, yields the kept ones in order."""

    def __init__(
        self,
        auditor: Auditor,
        *,
        batch_size: int = 64,
        on_flagged: Callable[[Verdict], None] | None = None,
    ) -> None:
        self.auditor = auditor
        self.batch_size = batch_size
        self.on_flagged = on_flagged
        self.flagged: list[Verdict] = []

    def __call__(self, samples: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        source = iter(samples)
        while batch := list(itertools.islice(source, self.batch_size)):
            verdicts = self.auditor.check_samples([_sample(n, s) for n, s in enumerate(batch)])
            for sample, verdict in zip(batch, verdicts, strict=True):
                if not verdict.flagged:
                    yield sample
                    continue
                self.flagged.append(verdict)
                if self.on_flagged is not None:
                    self.on_flagged(verdict)


def _sample(n: int, wds_sample: dict[str, Any]) -> Sample:
    key = str(wds_sample.get("__key__", n))
    stored = [
        (k, v) for k, v in wds_sample.items() if not k.startswith("__") and isinstance(v, bytes)
    ]
    images = [k for k, _ in stored if k.rsplit(".", 1)[-1].lower() in IMAGE_EXTENSIONS]
    main = images[0] if images else (stored[0][0] if stored else None)
    data = dict(stored).get(main, b"") if main else b""
    meta = _json(wds_sample.get("json"))
    caption = wds_sample.get("txt")
    url = meta.get("url")
    return Sample(
        key=key,
        source=str(wds_sample.get("__url__", "<webdataset>")),
        location=f"{key}.{main}" if main else key,
        index=n,
        load=lambda: data,
        caption=caption.decode("utf-8", "replace") if isinstance(caption, bytes) else None,
        url=url if isinstance(url, str) else None,
        meta=meta,
        error=None if images else "no image member",
        parts=tuple(Part(f"{key}.{k}", lambda v=v: v) for k, v in stored if k != main),
    )


def _json(blob: Any) -> dict[str, Any]:
    if not isinstance(blob, bytes):
        return blob if isinstance(blob, dict) else {}
    try:
        loaded = json.loads(blob)
    except ValueError:
        return {}
    return loaded if isinstance(loaded, dict) else {}
