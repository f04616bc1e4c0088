"""Cleaned copies of tar shards: every member of each kept sample, byte-identical, in order.

Member headers are rewritten by ``tarfile`` from the originals' metadata; no member is ever
extracted, so a hostile member name cannot reach the file system. A compressed shard is
written compressed the same way, under its own name.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from safeset.sinks.base import Decisions, atomic_output
from safeset.sources.webdataset import TarSource, compression, iter_samples


def clean_tars(source: TarSource, decisions: Decisions, out: Path) -> None:
    for path in source.files:
        clean_tar(path, decisions, out / path.name)


def clean_tar(path: Path, decisions: Decisions, dest: Path) -> None:
    seen = 0
    with (
        atomic_output(dest) as f,
        tarfile.open(
            dest.name, f"w{compression(path)}", fileobj=f, format=tarfile.PAX_FORMAT
        ) as tf,
    ):
        for sample, group in iter_samples(path):
            seen += 1
            verdict = decisions.kept(str(path), sample.index, sample.location)
            if verdict is None:
                continue
            files = [(sample.location, sample.load())] + [(p.name, p.load()) for p in sample.parts]
            decisions.verify(verdict, str(path), files)
            for member, data in zip(group.members, group.data, strict=True):
                tf.addfile(member, io.BytesIO(data) if data is not None else None)
    decisions.counts.files += 1
    decisions.check_all_seen(str(path), seen)
