"""safeset's public Python API: what the command line, the pipeline integrations and users'
own code call.

    import safeset

    auditor = safeset.Auditor(lists=["iwf=lists/iwf.csv"], dihedral=True)
    verdicts = auditor.check([jpeg_bytes, {"image": png_bytes, "caption": "a cat"}])
    verdicts[0].action, verdicts[0].reasons, verdicts[0].matches

    summary = safeset.scan(["shards/"], ["lists/iwf"], "scan-out")
    counts = safeset.clean(["shards/"], "scan-out", "shards-clean")

Nothing here prints, logs or raises anything that holds a list's entries: a match names its
list and the entry's line (or position) and distance, never the listed value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safeset.clean import run_clean
from safeset.engines import Engine
from safeset.errors import SafesetError
from safeset.formats import Source, SourceOptions, open_source
from safeset.formats.clean import CleanCounts
from safeset.lists import HashList, ListSpec, load_list
from safeset.matching.matcher import Match, Matcher
from safeset.pipeline import Scanner, ScanOptions
from safeset.policy import Policy
from safeset.sample import Sample
from safeset.scan import check_lists, check_options, run_scan

ListLike = str | Path | HashList
SourceLike = str | Path | Source

# Result columns a Verdict carries as its own attributes rather than in ``signals``.
_OWN = frozenset({"key", "error", "matches", "action", "reasons", "source", "index", "shard"})


@dataclass(frozen=True)
class Verdict:
    """What safeset decided about one item, and why."""

    key: str
    action: str  # "remove" | "review" | "keep"
    reasons: tuple[str, ...]
    matches: tuple[Match, ...]
    error: str | None
    #: Every other result column: the item's own hashes, size, scores... (see README).
    signals: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def flagged(self) -> bool:
        return self.action != "keep"


def load_lists(lists: Iterable[ListLike]) -> list[HashList]:
    """Hash lists from ``[NAME=][TYPE:]FILE`` strings, paths (files, saved lists, or a lists
    file ``lists.toml`` naming several with their rules) or ``HashList`` objects; SafesetError
    (file and line, never an entry) when one is unusable."""
    from safeset.lists.config import is_lists_file, load_lists_file

    loaded = [
        found
        for hl in lists
        for found in (
            [hl]
            if isinstance(hl, HashList)
            else load_lists_file(Path(str(hl)))
            if is_lists_file(str(hl))
            else [load_list(ListSpec.parse(str(hl)))]
        )
    ]
    check_lists(loaded)
    return loaded


def open_sources(
    sources: Iterable[SourceLike], options: SourceOptions | None = None
) -> list[Source]:
    return [s if isinstance(s, Source) else open_source(s, options) for s in sources]


class Auditor:
    """Checks items against hash lists (and, if asked, content signals) in memory.

    ``lists``: ``[NAME=][TYPE:]FILE`` strings, paths, saved lists or ``HashList`` objects.
    The other arguments are those of ``ScanOptions``; ``pdq_threshold`` is a shorthand for
    ``thresholds={"pdq": N}``, ``screen`` for a policy that screens.
    """

    def __init__(
        self,
        lists: Iterable[ListLike],
        *,
        dihedral: bool = False,
        exact_pdq: bool = False,
        pdq_threshold: int | None = None,
        thresholds: Mapping[str, int] | None = None,
        policy: Policy | None = None,
        screen: bool = False,
        signals: Sequence[Any] = (),
        sample_timeout: float = 60.0,
    ) -> None:
        policy = policy or Policy()
        if screen and not policy.screen:
            policy = Policy(policy.actions, policy.thresholds, policy.terms, screen=True)
        merged = dict(thresholds or {})
        if pdq_threshold is not None:
            merged["pdq"] = pdq_threshold
        self.options = ScanOptions(
            dihedral=dihedral,
            exact_pdq=exact_pdq,
            thresholds=merged,
            policy=policy,
            signals=tuple(signals),
            sample_timeout=sample_timeout,
        )
        check_options(self.options)
        self.lists = load_lists(lists)
        self.scanner = Scanner(Matcher(self.lists, self.options.thresholds), self.options)
        self.scanner.check_available()

    def check(self, items: Iterable[bytes | Mapping[str, Any]]) -> list[Verdict]:
        """One Verdict per item, in order. An item is an image's bytes, or a mapping with
        ``image`` (bytes, or a Hugging Face ``{"bytes": ..., "path": ...}``) and optionally
        ``key``, ``caption`` (or ``text``), ``url`` and ``metadata`` (or ``json``)."""
        return self.check_samples([_sample(n, item) for n, item in enumerate(items)])

    def check_samples(self, samples: Sequence[Sample]) -> list[Verdict]:
        """One Verdict per ``Sample`` (a record with all its stored files), in order."""
        return [_verdict(row) for row in self.scanner.scan_batch(samples)]

    def __repr__(self) -> str:
        return f"Auditor(lists={self.lists!r}, options={self.options.describe()!r})"


def _sample(n: int, item: bytes | Mapping[str, Any]) -> Sample:
    if isinstance(item, bytes | bytearray | memoryview):
        item = {"image": bytes(item)}
    if not isinstance(item, Mapping):
        raise SafesetError(f"item {n}: expected bytes or a mapping, got {type(item).__name__}")
    image = item.get("image")
    error = None
    if isinstance(image, Mapping):  # Hugging Face Image(decode=False)
        image = image.get("bytes")
    if image is None:
        error = "image is null (no bytes)"
    elif not isinstance(image, bytes | bytearray | memoryview):
        raise SafesetError(
            f"item {n}: image must be bytes or {{'bytes': ...}}, got {type(image).__name__} "
            "(for Hugging Face datasets, cast the column to Image(decode=False))"
        )
    data = bytes(image or b"")
    meta = item.get("metadata", item.get("json")) or {}
    caption = item.get("caption", item.get("text"))
    key = item.get("key")
    return Sample(
        key=str(key) if key is not None else str(n),
        source="<memory>",
        location=f"item {n}",
        index=n,
        load=lambda: data,
        caption=caption if isinstance(caption, str) else None,
        url=item.get("url") if isinstance(item.get("url"), str) else None,
        meta=meta if isinstance(meta, dict) else {},
        error=error,
    )


def _verdict(row: Mapping[str, Any]) -> Verdict:
    return Verdict(
        key=row["key"],
        action=row["action"],
        reasons=tuple(row["reasons"]),
        matches=tuple(
            Match(m["list"], m["entry"], m["signal_type"], m["distance"], m["variant"], m["part"])
            for m in row["matches"]
        ),
        error=row["error"],
        signals={k: v for k, v in row.items() if k not in _OWN},
    )


def scan(
    sources: Iterable[SourceLike],
    lists: Iterable[ListLike],
    out: str | Path,
    *,
    options: ScanOptions | None = None,
    engine: Engine | None = None,
    source_options: SourceOptions | None = None,
    force: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Scan datasets into the scan folder ``out``; returns its summary (summary.json).

    Rerunning with the same arguments resumes an interrupted scan; a different job in the same
    folder is refused unless ``force``; a scan that reads no samples at all raises
    SafesetError (after writing the folder), never passes as clean. ``engine`` defaults to a
    local process pool of all cores (``LocalEngine``); ``RayEngine`` runs the same tasks on Ray.
    """
    opened = open_sources(sources, source_options)
    return run_scan(
        opened,
        load_lists(lists),
        Path(out),
        options or ScanOptions(),
        engine=engine,
        force=force,
        quiet=not progress,
    )


def clean(
    sources: Iterable[SourceLike],
    scan_dir: str | Path,
    out: str | Path,
    *,
    keep_review: bool = False,
    source_options: SourceOptions | None = None,
    progress: bool = True,
) -> CleanCounts:
    """Write the datasets again under ``out``, in their own formats, without the samples the
    scan in ``scan_dir`` flagged (``keep_review`` keeps those marked review)."""
    opened = open_sources(sources, source_options)
    return run_clean(opened, Path(scan_dir), Path(out), keep_review=keep_review, quiet=not progress)
