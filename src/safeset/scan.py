"""The ``scan`` job: sources and hash lists in, a scan folder out."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from safeset import __version__, lock
from safeset.engines import Engine, LocalEngine
from safeset.errors import SafesetError, check_seconds
from safeset.expansion import expand
from safeset.formats import Source
from safeset.lists import HashList
from safeset.lists.config import check_cancels
from safeset.matching.matcher import Matcher
from safeset.output_folders import refuse_clashing_names
from safeset.pipeline import Scanner, ScanOptions
from safeset.progress import track
from safeset.report import write_report
from safeset.store import ScanDir


def is_inside(path: Path, root: Path) -> bool:
    return path.resolve().is_relative_to(root.resolve())


def refuse_inside_sources(out: Path, sources: Sequence[Source], what: str) -> None:
    """Invariant 2: nothing safeset writes may land inside a source."""
    for source in sources:
        for root in source.roots():
            if is_inside(out, root):
                raise SafesetError(
                    f"{what} {out} is inside the source {root}; choose another folder"
                )


def check_lists(lists: Sequence[HashList]) -> None:
    if not lists:
        raise SafesetError("no hash list given: pass at least one --list FILE")
    names = [hl.name for hl in lists]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise SafesetError(f"two lists are named {duplicate!r}: name them with --list NAME=FILE")
    check_cancels(lists)


def job_record(
    sources: Sequence[Source], lists: Sequence[HashList], options: ScanOptions
) -> dict[str, Any]:
    """What makes two scans the same job (list contents enter only as a fingerprint)."""
    return {
        "sources": [s.describe() for s in sources],
        "lists": [
            {"name": hl.name, "sha256": hl.fingerprint, "entries": hl.counts(), **hl.rules()}
            for hl in lists
        ],
        "options": options.describe(),
    }


def check_options(options: ScanOptions) -> None:
    """Thresholds beyond half a hash's bits would match unrelated values wholesale."""
    check_seconds("sample_timeout", options.sample_timeout)
    for type_name, threshold in options.thresholds.items():
        most = 4 * _nbytes(type_name)
        if not 0 <= threshold <= most:
            raise SafesetError(f"{type_name} threshold {threshold} is out of range 0..{most}")


def _nbytes(type_name: str) -> int:
    from safeset.signals import lookup

    found = lookup(type_name)
    if found is None:
        raise SafesetError(f"unknown hash type {type_name!r} in the thresholds")
    return found.nbytes


def run_scan(
    sources: Sequence[Source],
    lists: Sequence[HashList],
    out: Path,
    options: ScanOptions,
    *,
    engine: Engine | None = None,
    force: bool = False,
    quiet: bool = False,
) -> dict[str, Any]:
    """Scan ``sources`` into the scan folder ``out`` (resuming it if it holds the same job)."""
    started = time.monotonic()
    engine = engine or LocalEngine()
    check_options(options)
    check_lists(lists)
    engine.check()
    scanner = Scanner(Matcher(lists, options.thresholds), options)
    scanner.check_available()
    refuse_inside_sources(out, sources, "--out")
    for source in sources:
        refuse_clashing_names(source)
    shards = [sh for i, s in enumerate(sources) for sh in s.shards(f"s{i:03d}")]
    if not shards:
        raise SafesetError(f"the scan read no samples from {', '.join(_names(sources))}: empty")
    with lock.exclusive(out, "safeset scan"):
        scan_dir = ScanDir(out)
        scan_dir.prepare(job_record(sources, lists, options), force=force)
        pending = [sh for sh in shards if not scan_dir.done(sh.id)]
        with track("scanning", len(shards), quiet=quiet) as tracker:
            tracker.advance(0, units=len(shards) - len(pending))

            def store(shard, table) -> None:
                scan_dir.write_shard(shard.id, table)
                tracker.advance(table.num_rows)

            engine.run(pending, scanner.scan_shard, store)
        # Recomputed from the stored results on every run, so a resumed scan ends the same.
        expanded = expand(scan_dir, engine=engine).as_dict() if options.expand else None
        summary = scan_dir.write_reports(
            {
                "expansion": expanded,
                "shards": len(shards),
                "lists": [
                    {
                        "name": hl.name,
                        "entries": hl.counts(),
                        "skipped": dict(hl.skipped),
                        **hl.rules(),
                    }
                    for hl in lists
                ],
                # What may differ between an interrupted-and-resumed run and a clean one.
                "run": {
                    "engine": engine.name,
                    "shards_resumed": len(shards) - len(pending),
                    "elapsed_seconds": round(time.monotonic() - started, 3),
                    "safeset_version": __version__,
                },
            }
        )
        write_report(out)
    if summary["samples"] == 0:
        # An empty shard list or shards that held nothing: never reported as a clean scan.
        raise SafesetError(
            f"the scan read no samples from {', '.join(_names(sources))}: nothing was checked"
        )
    return summary


def _names(sources: Sequence[Source]) -> list[str]:
    return [str(root) for source in sources for root in source.roots()[:1]]
