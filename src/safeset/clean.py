"""The ``clean`` job: a scan's verdicts applied to its sources, written in their own format."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safeset.errors import SafesetError
from safeset.policy import Action
from safeset.progress import track
from safeset.scan import refuse_inside_sources
from safeset.sinks.base import CleanCounts, Decisions, Verdict
from safeset.sinks.folder import clean_folder
from safeset.sinks.parquet import clean_parquets
from safeset.sinks.urls import clean_url_tables
from safeset.sinks.webdataset import clean_tars
from safeset.sources import Source, UrlOptions, open_sources
from safeset.sources.folder import FolderSource
from safeset.sources.parquet import ParquetSource
from safeset.sources.urls import UrlSource
from safeset.sources.webdataset import TarSource
from safeset.store import ScanDir


@dataclass(frozen=True)
class CleanRequest:
    sources: list[str]
    scan: Path
    out: Path
    keep_review: bool = False
    quiet: bool = False
    urls: UrlOptions = field(default_factory=UrlOptions)


def load_decisions(scan_dir: ScanDir, keep_review: bool) -> Decisions:
    verdicts: dict[str, dict[int, Verdict]] = {}
    columns = ["source", "index", "location", "action", "md5", "url", "parts"]
    for table in scan_dir.iter_tables(columns):
        cols = table.to_pydict()
        for source, index, location, action, md5, url, parts in zip(
            *(cols[c] for c in columns), strict=True
        ):
            part_md5s = tuple(p["md5"] for p in parts or ())
            verdicts.setdefault(source, {})[index] = Verdict(action, location, md5, url, part_md5s)
    keep = {Action.KEEP.value} | ({Action.REVIEW.value} if keep_review else set())
    return Decisions(verdicts, frozenset(keep))


def _check_same_sources(scan_dir: ScanDir, sources: list[Source]) -> None:
    scanned = scan_dir.read_job().get("sources")
    if scanned != [s.describe() for s in sources]:
        raise SafesetError(
            f"the sources given differ from those scanned into {scan_dir.path}; "
            "pass the same SOURCE arguments (and --url-col) as to scan"
        )


def run_clean(req: CleanRequest) -> CleanCounts:
    scan_dir = ScanDir(req.scan)
    scan_dir.read_job()
    sources = open_sources(req.sources, req.urls)
    _check_same_sources(scan_dir, sources)
    refuse_inside_sources(req.out, sources, "clean output")
    if req.out.exists() and any(req.out.iterdir()):
        raise SafesetError(f"clean output {req.out} is not empty; choose a new folder")
    decisions = load_decisions(scan_dir, req.keep_review)
    with track("cleaning", len(sources), quiet=req.quiet, unit="sources") as tracker:
        for source in sources:
            before = decisions.counts.kept + decisions.counts.left_out
            _clean_one(source, decisions, req.out)
            tracker.advance(decisions.counts.kept + decisions.counts.left_out - before)
    return decisions.counts


# The cleaned-output writer for each kind of source: the same format it was read in.
SINKS: dict[type[Source], Callable[[Any, Decisions, Path], None]] = {
    FolderSource: clean_folder,
    TarSource: clean_tars,
    ParquetSource: clean_parquets,
    UrlSource: clean_url_tables,
}


def _clean_one(source: Source, decisions: Decisions, out: Path) -> None:
    SINKS[type(source)](source, decisions, out)
