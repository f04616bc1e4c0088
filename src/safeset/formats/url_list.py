"""Url lists as img2dataset takes them (``input_format="txt"``): one image URL a line.

Each non-blank line is a row (key = its url, which a cleaned copy keeps, where a row number
would shift), downloaded while it is scanned like a URL
table's (formats.urls: bytes in memory only, every row one sample, with its bytes or the
reason it has none). ``clean`` writes the file again minus the removed rows' lines, every
other byte (blank lines, line endings) as it was.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safeset.errors import SafesetError
from safeset.fetch import Fetched, FetchOptions, fetch, map_ordered
from safeset.formats.base import FileSource, Format, Shard, Source, SourceOptions, Target
from safeset.formats.clean import Decisions, atomic_output, output_path
from safeset.formats.layout import is_url_list
from safeset.formats.urls import row_location
from safeset.sample import Sample

ROWS_PER_SHARD = 1000


def _lines(path: Path) -> Iterator[tuple[bytes, str | None]]:
    """Every line with its url (None for a blank line), bytes as they are in the file."""
    try:
        with open(path, "rb") as f:
            for raw in f:
                text = raw.decode("utf-8", "replace").strip()
                yield raw, text.removeprefix("\ufeff") or None
    except OSError as exc:
        raise SafesetError(f"cannot read {path}: {exc.strerror or exc}") from None


@dataclass(frozen=True)
class UrlListShard(Shard):
    path: str
    first_row: int
    count: int
    fetch: FetchOptions

    def urls(self) -> list[str]:
        urls = [u for _, u in _lines(Path(self.path)) if u is not None]
        return urls[self.first_row : self.first_row + self.count]

    def read(self) -> Iterator[Sample]:
        urls = self.urls()
        fetched = map_ordered(lambda u: fetch(u, self.fetch), urls, self.fetch.threads)
        for offset, (url, got) in enumerate(zip(urls, fetched, strict=True)):
            yield self._sample(self.first_row + offset, url, got)

    def _sample(self, index: int, url: str, got: Fetched) -> Sample:
        data = got.data or b""
        return Sample(
            key=url,
            source=self.path,
            location=row_location(index),
            index=index,
            load=lambda: data,
            url=url,
            error=got.error,
        )


class UrlListSource(FileSource):
    kind = "url-list"

    def __init__(self, files: list[Path], options: SourceOptions, folder: Path | None) -> None:
        self.files = files
        self.folder = folder
        self.fetch = options.fetch
        self._rows: dict[Path, int] = {}

    def rows(self, path: Path) -> int:
        if path not in self._rows:
            self._rows[path] = sum(1 for _, u in _lines(path) if u is not None)
        return self._rows[path]

    def shards(self, prefix: str) -> list[Shard]:
        shards: list[Shard] = []
        for path in self.files:
            for first in range(0, self.rows(path), ROWS_PER_SHARD):
                count = min(ROWS_PER_SHARD, self.rows(path) - first)
                shard_id = f"{prefix}-{len(shards):06d}"
                shards.append(UrlListShard(shard_id, str(path), first, count, self.fetch))
        return shards

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "files": [{"path": str(p.resolve()), "rows": self.rows(p)} for p in self.files],
        }

    def clean(self, decisions: Decisions, out: Path) -> None:
        for path in self.files:
            row = 0
            with atomic_output(output_path(path, self.folder, out)) as f:
                for raw, url in _lines(path):
                    if url is not None:
                        scanned = decisions.kept(str(path), row, row_location(row), url=url)
                        row += 1
                        if scanned is None:
                            continue
                    f.write(raw)
            decisions.counts.files += 1
            decisions.check_all_seen(str(path), row)


class UrlListFormat(Format):
    """``.txt`` files whose lines are image URLs (a folder of them, or the files)."""

    name = "url-list"

    @classmethod
    def detect(cls, target: Target) -> Source | None:
        if target.flat_files(is_url_list):
            return UrlListSource(target.files, target.options, target.folder)
        return None
