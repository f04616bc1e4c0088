"""The ``clean`` job: a scan's decisions applied to its sources, written in their own format."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from safeset import lock
from safeset.atomic import TMP_PREFIX, TMP_SUFFIX, is_leftover
from safeset.errors import SafesetError
from safeset.formats import Source
from safeset.formats.clean import REWRITING, CleanCounts, Decisions, Scanned
from safeset.output_folders import output_folders
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
    decisions = load_decisions(scan_dir, keep_review)
    job = clean_job(scan_dir, sources, keep_review)
    with lock.exclusive(out, "safeset clean", JOURNAL) as held:
        rewriting = _resumable(out, held, job)
        held.record(job)
        token = REWRITING.set(rewriting)
        try:
            places = output_folders(sources, out)
            if places != [out] * len(sources):
                decisions.counts.folders = [p.name for p in places]
            with track("cleaning", len(sources), quiet=quiet, unit="sources") as tracker:
                for source, place in zip(sources, places, strict=True):
                    before = decisions.counts.kept + decisions.counts.left_out
                    source.clean(decisions, place)
                    tracker.advance(decisions.counts.kept + decisions.counts.left_out - before)
        finally:
            REWRITING.reset(token)
        # Complete: the cleaned dataset holds nothing of safeset's own.
        held.path.unlink()
    return decisions.counts


# Present in a clean output only while a clean writes it (and after one was interrupted): the
# job it belongs to. Rerunning that same job finishes the output; nothing else may write there.
JOURNAL = ".safeset-clean"


def clean_job(scan_dir: ScanDir, sources: Sequence[Source], keep_review: bool) -> str:
    scanned = json.dumps(scan_dir.read_job(), sort_keys=True).encode()
    return json.dumps(
        {
            "scan": str(scan_dir.path.resolve()),
            "scan_job": hashlib.sha256(scanned).hexdigest(),
            "sources": [s.describe() for s in sources],
            "keep_review": keep_review,
        },
        sort_keys=True,
    )


def _resumable(out: Path, held: lock.Held, job: str) -> bool:
    """Whether ``out`` holds the output of an interrupted run of this very job (to finish);
    SafesetError if it holds anything else."""
    others = [p for p in out.iterdir() if p != held.path]
    if held.created or not held.previous:
        if others:
            raise SafesetError(f"clean output {out} is not empty; choose a new folder")
        return False
    if held.previous != job:
        raise SafesetError(
            f"clean output {out} holds an interrupted clean of another scan, sources or "
            "--keep-review; choose a new folder"
        )
    # Whatever was being written when it stopped is incomplete by construction.
    for leftover in out.rglob(f"{TMP_PREFIX}*{TMP_SUFFIX}"):
        if leftover.is_file() and is_leftover(leftover):
            leftover.unlink()
    return True
