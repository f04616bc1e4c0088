"""Scanning one shard: samples -> signals -> matches -> policy -> a table of results.

This is the whole per-shard job; engines only decide where it runs. It never raises for bad
samples: each becomes a row whose ``error`` says why it could not be hashed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from safeset.matching.matcher import Match, Matcher, SampleSignals
from safeset.policy import Evidence, Policy
from safeset.sample import Sample
from safeset.screening import caption_terms, screen_image
from safeset.signals.exact import exact_digests
from safeset.signals.image import UnreadableImage, image_facts
from safeset.sources.base import Shard
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
    """One sample's result row (without matches and action) and the signals to match."""
    row: dict[str, Any] = {
        "key": sample.key,
        "source": sample.source,
        "location": sample.location,
        "index": sample.index,
        "url": sample.url,
        "error": sample.error,
    }
    signals = SampleSignals()
    if options.policy.screen:
        row.update(caption_terms(sample, options.policy))
    if sample.error:
        return row, signals
    try:
        data = sample.load()
    except OSError as exc:
        row["error"] = f"cannot read: {exc.strerror or exc}"
        return row, signals
    digests = exact_digests(data)
    row.update(digests)
    # Exact hashes match even when the bytes do not decode: a known file is known, broken or not.
    signals.exact = {name: bytes.fromhex(value) for name, value in digests.items()}
    try:
        facts = image_facts(data, dihedral=options.dihedral, exact_pdq=options.exact_pdq)
    except UnreadableImage as exc:
        row["error"] = str(exc)
        return row, signals
    row.update(
        width=facts.width, height=facts.height, pdq=facts.pdq.hex, pdq_quality=facts.pdq.quality
    )
    variants = facts.pdq_dihedral or (facts.pdq,)
    signals.pdq = [(v.hash, v.quality) for v in variants]
    if options.policy.screen:
        row.update(screen_image(data, options.policy).row())
    return row, signals


def evidence(row: dict[str, Any], matches: list[Match]) -> Evidence:
    return Evidence(
        matches=matches,
        error=row["error"],
        explicit_score=row.get("explicit_score"),
        ages=[f["age"] for f in row.get("faces") or ()],
        sexual_terms=row.get("sexual_terms") or (),
        minor_terms=row.get("minor_terms") or (),
    )


def scan_shard(shard: Shard, ctx: ScanContext) -> pa.Table:
    rows: list[dict[str, Any]] = []
    batch: list[SampleSignals] = []
    for sample in shard.read():
        try:
            with time_limit(ctx.options.sample_timeout):
                row, signals = scan_sample(sample, ctx.options)
        except SampleTimeout:
            sample.error = f"timed out after {ctx.options.sample_timeout:g}s"
            row, signals = scan_sample(sample, ctx.options)
        row["shard"] = shard.id
        rows.append(row)
        batch.append(signals)
    for row, matches in zip(rows, ctx.matcher.match(batch), strict=True):
        decision = ctx.options.policy.decide(evidence(row, matches))
        row["matches"] = [
            {
                "list": m.list_name,
                "entry": m.entry,
                "signal_type": m.signal_type,
                "distance": m.distance,
                "variant": m.variant,
            }
            for m in matches
        ]
        row["action"] = decision.action.value
        row["reasons"] = list(decision.reasons)
    return pa.Table.from_pylist(rows, schema=RESULT_SCHEMA)
