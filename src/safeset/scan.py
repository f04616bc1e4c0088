"""The ``scan`` job: sources and hash lists in, a scan folder out."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safeset.engine import Engine, check_engine, run_engine
from safeset.errors import SafesetError
from safeset.lists import HashList, ListSpec, load_list
from safeset.matching.matcher import Matcher
from safeset.pipeline import ScanContext, ScanOptions
from safeset.progress import track
from safeset.screening import check_available
from safeset.sources import Source, UrlOptions, open_sources
from safeset.store import ScanDir


@dataclass(frozen=True)
class ScanRequest:
    sources: list[str]
    lists: list[str]
    out: Path
    options: ScanOptions = field(default_factory=ScanOptions)
    workers: int = 1
    force: bool = False
    quiet: bool = False
    urls: UrlOptions = field(default_factory=UrlOptions)
    engine: Engine = Engine.LOCAL
    ray_address: str | None = None


def is_inside(path: Path, root: Path) -> bool:
    return path.resolve().is_relative_to(root.resolve())


def refuse_inside_sources(out: Path, sources: list[Source], what: str) -> None:
    """Invariant 2: nothing safeset writes may land inside a source."""
    for source in sources:
        for root in source.roots():
            if is_inside(out, root):
                raise SafesetError(
                    f"{what} {out} is inside the source {root}; choose another folder"
                )


def load_lists(texts: list[str]) -> list[HashList]:
    from safeset.lists.config import check_cancels, is_lists_file, load_lists_file

    if not texts:
        raise SafesetError("no hash list given: pass at least one --list FILE")
    lists = [
        hl
        for t in texts
        for hl in (load_lists_file(Path(t)) if is_lists_file(t) else [load_list(ListSpec.parse(t))])
    ]
    names = [hl.name for hl in lists]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise SafesetError(f"two lists are named {duplicate!r}: name them with --list NAME=FILE")
    check_cancels(lists)
    return lists


def job_record(
    sources: list[Source], lists: list[HashList], options: ScanOptions
) -> dict[str, Any]:
    """What makes two scans the same job (list contents enter only as a file fingerprint)."""
    return {
        "sources": [s.describe() for s in sources],
        "lists": [
            {"name": hl.name, "sha256": hl.fingerprint, "entries": hl.counts(), **hl.rules()}
            for hl in lists
        ],
        "options": options.describe(),
    }


def run_scan(req: ScanRequest) -> dict[str, Any]:
    if not 0 <= req.options.pdq_threshold <= 128:
        raise SafesetError(
            f"--pdq-threshold {req.options.pdq_threshold} is out of range 0..128 (usual: 31)"
        )
    if req.ray_address and req.engine is not Engine.RAY:
        raise SafesetError("--ray-address is for --engine ray")
    check_engine(req.engine)
    started = time.monotonic()
    if req.options.policy.screen:
        check_available()
    sources = open_sources(req.sources, req.urls)
    refuse_inside_sources(req.out, sources, "--out")
    lists = load_lists(req.lists)
    shards = [sh for i, s in enumerate(sources) for sh in s.shards(f"s{i:03d}")]
    scan_dir = ScanDir(req.out)
    scan_dir.prepare(job_record(sources, lists, req.options), force=req.force)
    ctx = ScanContext(Matcher(lists, req.options.pdq_threshold), req.options)
    pending = [sh for sh in shards if not scan_dir.done(sh.id)]
    with track("scanning", len(shards), quiet=req.quiet) as tracker:
        tracker.advance(0, units=len(shards) - len(pending))
        run_engine(
            req.engine,
            pending,
            ctx,
            scan_dir,
            tracker.advance,
            workers=req.workers,
            ray_address=req.ray_address,
        )
    return scan_dir.write_reports(
        {
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
            # Everything that may differ between an interrupted-and-resumed run and a clean one.
            "run": {
                "engine": req.engine.value,
                "shards_resumed": len(shards) - len(pending),
                "elapsed_seconds": round(time.monotonic() - started, 3),
            },
        }
    )
