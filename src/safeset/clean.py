"""The ``clean`` job: a scan's decisions applied to its sources, written in their own format."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from safeset.errors import SafesetError
from safeset.formats import Source
from safeset.formats.clean import CleanCounts, Decisions, Scanned
from safeset.policy import Action
from safeset.progress import track
from safeset.scan import refuse_inside_sources
from safeset.store import ScanDir


def load_decisions(scan_dir: ScanDir, keep_review: bool) -> Decisions:
    recorded: dict[str, dict[int, Scanned]] = {}
    columns = ["source", "index", "location", "action", "md5", "url", "parts"]
    for table in scan_dir.iter_tables(columns):
        cols = table.to_pydict()
        for source, index, location, action, md5, url, parts in zip(
            *(cols[c] for c in columns), strict=True
        ):
            part_md5s = tuple(p["md5"] for p in parts or ())
            recorded.setdefault(source, {})[index] = Scanned(action, location, md5, url, part_md5s)
    keep = {Action.KEEP.value} | ({Action.REVIEW.value} if keep_review else set())
    return Decisions(recorded, frozenset(keep))


def _check_same_sources(scan_dir: ScanDir, sources: Sequence[Source]) -> None:
    scanned = scan_dir.read_job().get("sources")
    if scanned != [s.describe() for s in sources]:
        raise SafesetError(
            f"the sources given differ from those scanned into {scan_dir.path}; "
            "pass the same SOURCE arguments (and --url-col) as to scan"
        )


def run_clean(
    sources: Sequence[Source],
    scan: Path,
    out: Path,
    *,
    keep_review: bool = False,
    quiet: bool = False,
) -> CleanCounts:
    scan_dir = ScanDir(scan)
    scan_dir.read_job()
    _check_same_sources(scan_dir, sources)
    refuse_inside_sources(out, sources, "clean output")
    if out.exists() and any(out.iterdir()):
        raise SafesetError(f"clean output {out} is not empty; choose a new folder")
    decisions = load_decisions(scan_dir, keep_review)
    with track("cleaning", len(sources), quiet=quiet, unit="sources") as tracker:
        for source in sources:
            before = decisions.counts.kept + decisions.counts.left_out
            source.clean(decisions, out)
            tracker.advance(decisions.counts.kept + decisions.counts.left_out - before)
    return decisions.counts
