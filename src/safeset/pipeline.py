"""Scanning one shard: samples -> signals -> matches -> policy -> a table of results.

This is the whole per-shard job; engines only decide where it runs. It never raises for bad
samples: each becomes a row whose ``error`` says why it could not be hashed.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pyarrow as pa

from safeset.matching.matcher import Match, Matcher, SampleSignals
from safeset.policy import Evidence, Policy
from safeset.sample import Sample
from safeset.screening import caption_terms, screen_images
from safeset.signals.exact import exact_digests
from safeset.signals.image import UnreadableImage, image_facts
from safeset.signals.pdq_fast import RECHECK_MARGIN
from safeset.sources.base import IMAGE_EXTENSIONS, Shard, extension
from safeset.store import RESULT_SCHEMA
from safeset.timeouts import SampleTimeout, time_limit


@dataclass(frozen=True)
class ScanOptions:
    dihedral: bool = False
    exact_pdq: bool = False
    pdq_threshold: int = 31
    policy: Policy = field(default_factory=Policy)
    # Operational, like --workers: not part of what makes two scans the same job.
    sample_timeout: float = 60.0

    def describe(self) -> dict[str, Any]:
        return {
            "dihedral": self.dihedral,
            "exact_pdq": self.exact_pdq,
            "pdq_threshold": self.pdq_threshold,
            "policy": self.policy.describe(),
        }


@dataclass(frozen=True)
class ScanContext:
    """Everything a worker needs, built once per job and shared by all shards."""

    matcher: Matcher
    options: ScanOptions


def scan_sample(sample: Sample, options: ScanOptions) -> tuple[dict[str, Any], SampleSignals]:
    """One sample's result row (without matches and action) and the signals to match.

    Every stored file of the sample is hashed, the image and each of its parts, before anything
    else can go wrong: a known file is known whatever its name and whether or not it decodes.
    """
    row: dict[str, Any] = {
        "key": sample.key,
        "source": sample.source,
        "location": sample.location,
        "index": sample.index,
        "url": sample.url,
        "error": sample.error,
        "parts": [],
    }
    signals = SampleSignals()
    if options.policy.screen:
        row.update(caption_terms(sample, options.policy))
    try:
        data = sample.load()
        parts = [(part.name, part.load()) for part in sample.parts]
    except OSError as exc:
        row["error"] = row["error"] or f"cannot read: {exc.strerror or exc}"
        return row, signals
    if sample.error and not data and not parts:
        return row, signals  # nothing stored (a null Parquet image, a failed download)
    digests = exact_digests(data)
    row.update(digests)
    signals.add_exact(digests, sample.location)
    part_problems = [_scan_part(name, blob, signals, options, row) for name, blob in parts]
    if sample.error:
        return row, signals
    try:
        facts = image_facts(data, dihedral=options.dihedral, exact_pdq=options.exact_pdq)
    except UnreadableImage as exc:
        row["error"] = str(exc)
        return row, signals
    row.update(
        width=facts.width, height=facts.height, pdq=facts.pdq.hex, pdq_quality=facts.pdq.quality
    )
    signals.add_pdq(facts.pdq_dihedral or (facts.pdq,), sample.location)
    row["error"] = next((p for p in part_problems if p), None)
    return row, signals


def _scan_part(
    name: str, data: bytes, signals: SampleSignals, options: ScanOptions, row: dict[str, Any]
) -> str | None:
    """Hash one part into ``row`` and ``signals``, PDQ too where its bytes are an image whatever
    its name says; the problem, if a file named as an image does not decode."""
    digests = exact_digests(data)
    signals.add_exact(digests, name)
    part: dict[str, Any] = {"name": name, **digests, "pdq": None, "pdq_quality": None}
    row["parts"].append(part)
    if not data:
        return None
    try:
        facts = image_facts(data, dihedral=options.dihedral, exact_pdq=options.exact_pdq)
    except UnreadableImage as exc:
        # A caption is not an image; a file named as one that does not decode is a problem.
        return f"{exc} ({name})" if extension(name) in IMAGE_EXTENSIONS else None
    signals.add_pdq(facts.pdq_dihedral or (facts.pdq,), name)
    part.update(pdq=facts.pdq.hex, pdq_quality=facts.pdq.quality)
    return None


def evidence(row: dict[str, Any], matches: list[Match]) -> Evidence:
    return Evidence(
        matches=matches,
        error=row["error"],
        explicit_score=row.get("explicit_score"),
        ages=[f["age"] for f in row.get("faces") or ()],
        sexual_terms=row.get("sexual_terms") or (),
        minor_terms=row.get("minor_terms") or (),
    )


# Samples matched per index search: large enough to amortise the search, small enough that a
# shard's image bytes never all sit in memory at once.
MATCH_BATCH = 256


def scan_shard(shard: Shard, ctx: ScanContext) -> pa.Table:
    rows: list[dict[str, Any]] = []
    samples = shard.read()
    while batch := list(itertools.islice(samples, MATCH_BATCH)):
        rows.extend(_scan_batch(batch, shard.id, ctx))
    return pa.Table.from_pylist(rows, schema=RESULT_SCHEMA)


def _scan_batch(samples: Sequence[Sample], shard_id: str, ctx: ScanContext) -> list[dict]:
    scanned = [_scan_timed(sample, ctx.options) for sample in samples]
    rows = [row | {"shard": shard_id} for row, _ in scanned]
    signals = [sample_signals for _, sample_signals in scanned]
    # The fast PDQ can sit a few bits from the reference hash; where that could turn a near
    # miss into a match, hash again from a full decode before the entry is dismissed.
    margin = 0 if ctx.options.exact_pdq else RECHECK_MARGIN
    matches, near = ctx.matcher.match_with_near(signals, margin)
    if near:
        exact = replace(ctx.options, exact_pdq=True)
        again = sorted(near)
        for i in again:
            row, signals[i] = _scan_timed(samples[i], exact)
            rows[i] = row | {"shard": shard_id}
        for i, found in zip(again, ctx.matcher.match([signals[i] for i in again]), strict=True):
            matches[i] = found
    if ctx.options.policy.screen:
        _screen(samples, rows, ctx.options.policy)
    for row, found in zip(rows, matches, strict=True):
        _decide(row, found, ctx.options.policy)
    return rows


def _screen(samples: Sequence[Sample], rows: list[dict[str, Any]], policy: Policy) -> None:
    """Classifier signals for every sample that decoded, in one batch."""
    decoded = [i for i, row in enumerate(rows) if row["error"] is None]
    results = screen_images([samples[i].load() for i in decoded], policy)
    for i, result in zip(decoded, results, strict=True):
        rows[i].update(result.row())


def _scan_timed(sample: Sample, options: ScanOptions) -> tuple[dict[str, Any], SampleSignals]:
    """``scan_sample`` within the per-sample time limit; over it, an error row."""
    try:
        with time_limit(options.sample_timeout):
            return scan_sample(sample, options)
    except SampleTimeout:
        sample.error = f"timed out after {options.sample_timeout:g}s"
        return scan_sample(sample, options)


def _decide(row: dict[str, Any], matches: list[Match], policy: Policy) -> None:
    decision = policy.decide(evidence(row, matches))
    row["matches"] = [
        {
            "list": m.list_name,
            "entry": m.entry,
            "signal_type": m.signal_type,
            "distance": m.distance,
            "variant": m.variant,
            "part": m.part,
        }
        for m in matches
    ]
    row["action"] = decision.action.value
    row["reasons"] = list(decision.reasons)
