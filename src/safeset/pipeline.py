"""Scanning one shard: samples -> hash values -> matches -> content signals -> policy -> rows.

A ``Scanner`` is the whole per-shard job, built once per job and shared by every shard (engines
only decide where it runs). Its steps run a batch of samples at a time:

1. every stored file of each sample is hashed with every hash type the job computes (the
   image's pixels too, where it decodes), within the per-sample time limit;
2. the values are matched against the lists; where a fast value lands just past a threshold,
   the sample is hashed again the reference way before the entry is dismissed;
3. each content signal (screening, provenance, a user's own) adds its columns;
4. the policy turns each row's evidence into an action with reasons.

It never raises for bad samples: each becomes a row whose ``error`` says why.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pyarrow as pa

from safeset.formats.base import IMAGE_EXTENSIONS, Shard, extension
from safeset.limits import TooLarge
from safeset.matching.matcher import Match, Matcher, SampleSignals
from safeset.policy import Evidence, Policy
from safeset.sample import Sample
from safeset.signals import (
    DEFAULT_HASH_TYPES,
    SCREENING_SIGNALS,
    BytesHashType,
    ComputeOptions,
    HashType,
    HashValue,
    PixelHashType,
    Signal,
    content_signal,
    hash_type,
)
from safeset.signals.image import ImageView, UnreadableImage, has_image_signature
from safeset.signals.recorded import RECORDED_FIELDS, recorded_values
from safeset.signals.unpad import original_size
from safeset.store import result_schema
from safeset.text import printable_row
from safeset.timeouts import SampleTimeout, time_limit

# Samples matched per index search: large enough to amortise the search, small enough that a
# shard's image bytes never all sit in memory at once.
MATCH_BATCH = 256


@dataclass(frozen=True)
class ScanOptions:
    """What a scan computes and how it decides: part of a job's identity (``describe``)."""

    dihedral: bool = False
    exact_pdq: bool = False
    #: Match distance per hash type; a type not named uses its default (pdq: 31).
    thresholds: Mapping[str, int] = field(default_factory=dict)
    policy: Policy = field(default_factory=Policy)
    #: Content signals to run besides those the policy asks for (names or instances).
    signals: tuple[str | Signal, ...] = ()
    #: Hash types to compute besides the defaults and those the lists hold.
    hash_types: tuple[str, ...] = ()
    #: PDQ of the picture inside a border or letterbox, as variant 8 (``signals.unpad``).
    unpad: bool = True
    #: Near-copies of remove-tier hits searched in the scanned dataset (``safeset.expansion``).
    expand: bool = True
    #: Hashes of the original file that a sample's metadata records, matched too
    #: (``signals.recorded``); ``recorded_fields`` names fields besides img2dataset's
    #: (field -> hash type).
    recorded: bool = True
    recorded_fields: Mapping[str, str] = field(default_factory=dict)

    def recorded_names(self) -> dict[str, str]:
        """Metadata field -> hash type of every recorded hash the scan reads."""
        return dict(RECORDED_FIELDS) | dict(self.recorded_fields) if self.recorded else {}

    # Operational, like --workers: not part of what makes two scans the same job.
    sample_timeout: float = 60.0

    @property
    def pdq_threshold(self) -> int:
        return self.thresholds.get("pdq", hash_type("pdq").default_threshold)

    def signal_names(self) -> list[str]:
        wanted = list(SCREENING_SIGNALS) if self.policy.screen else []
        wanted += [s if isinstance(s, str) else s.name for s in self.signals]
        wanted += ["near"] if self.expand else []
        return list(dict.fromkeys(wanted))

    def describe(self) -> dict[str, Any]:
        return {
            "dihedral": self.dihedral,
            "exact_pdq": self.exact_pdq,
            # Effective values, so that saying the default and saying nothing are one job.
            "thresholds": dict(
                sorted(({"pdq": self.pdq_threshold} | dict(self.thresholds)).items())
            ),
            "hash_types": sorted(self.hash_types),
            "signals": self.signal_names(),
            "signal_options": {
                s.name: s.describe()
                for s in self.signals
                if not isinstance(s, str) and s.describe()
            },
            "policy": self.policy.describe(),
            "unpad": self.unpad,
            "recorded": dict(sorted(self.recorded_names().items())),
        }


@dataclass
class Record:
    """One sample on its way through the steps: what is known of it so far."""

    sample: Sample
    row: dict[str, Any]
    signals: SampleSignals = field(default_factory=SampleSignals)
    image: ImageView | None = None  # the sample's image, where it decodes
    matches: list[Match] = field(default_factory=list)


class Scanner:
    """Every step of a scan for batches of samples; picklable, so workers can receive it."""

    def __init__(self, matcher: Matcher, options: ScanOptions | None = None) -> None:
        self.matcher = matcher
        self.options = options or ScanOptions()
        names = [*DEFAULT_HASH_TYPES, *self.options.hash_types, *matcher.type_names]
        self.hash_types: list[type[HashType]] = [hash_type(n) for n in dict.fromkeys(names)]
        self._signals = [_signal(s) for s in self._ordered_signals()]
        self._recorded = self.options.recorded_names()
        # Values of the other types are result columns only: no list to look them up in.
        self._queried = frozenset(matcher.type_names)
        self.schema: pa.Schema = result_schema(
            self.hash_types, [f for s in self._signals for f in s.fields]
        )
        # pyarrow imports pandas, where installed, the first time it converts Python objects
        # (~0.2 s): done here, in the process that builds the scanner, forked workers inherit
        # it instead of each paying for it.
        pa.array([], pa.int8())

    def _ordered_signals(self) -> list[str | Signal]:
        given = {s if isinstance(s, str) else s.name: s for s in self.options.signals}
        return [given.get(name, name) for name in self.options.signal_names()]

    def check_available(self) -> None:
        """Fail in one line, before any work, if a signal cannot run here."""
        for signal in self._signals:
            signal.check_available()

    def scan_shard(self, shard: Shard) -> pa.Table:
        rows: list[dict[str, Any]] = []
        samples = shard.read()
        while batch := list(itertools.islice(samples, MATCH_BATCH)):
            rows.extend(self.scan_batch(batch, shard.id))
        return pa.Table.from_pylist(rows, schema=self.schema)

    def scan_batch(self, samples: Sequence[Sample], shard_id: str = "") -> list[dict[str, Any]]:
        """The result row of each sample, in order, decided."""
        records = [self._hashed(s, self._compute) for s in samples]
        self._match(records)
        for signal in self._signals:
            signal.compute(records, self.options.policy)
        for record in records:
            record.row["shard"] = shard_id
            _decide(record, self.options.policy)
            printable_row(record.row)  # non-UTF-8 names would not store
        return [r.row for r in records]

    @property
    def _compute(self) -> ComputeOptions:
        return ComputeOptions(
            dihedral=self.options.dihedral, exact=self.options.exact_pdq, unpad=self.options.unpad
        )

    def _match(self, records: list[Record]) -> None:
        margins = (
            {} if self.options.exact_pdq else {t.name: t.recheck_margin for t in self.hash_types}
        )
        matches, near = self.matcher.match_with_near([r.signals for r in records], margins)
        if near:
            # A fast value can sit a few bits from the reference one; where that could turn a
            # near miss into a match, hash again the reference way before dismissing it.
            exact = replace(self._compute, exact=True)
            again = sorted(near)
            for i in again:
                records[i] = self._hashed(records[i].sample, exact)
            confirmed = self.matcher.match([records[i].signals for i in again])
            for i, found in zip(again, confirmed, strict=True):
                matches[i] = found
        for record, found in zip(records, matches, strict=True):
            record.matches = found

    def _hashed(self, sample: Sample, compute: ComputeOptions) -> Record:
        """``hash_sample`` within the per-sample time limit; over it, an error row."""
        try:
            with time_limit(self.options.sample_timeout):
                return hash_sample(sample, self.hash_types, compute, self._recorded, self._queried)
        except SampleTimeout:
            sample.error = f"timed out after {self.options.sample_timeout:g}s"
            return hash_sample(sample, self.hash_types, compute, self._recorded, self._queried)


def _signal(spec: str | Signal) -> Signal:
    return spec if isinstance(spec, Signal) else content_signal(spec)()


def hash_sample(
    sample: Sample,
    types: Sequence[type[HashType]],
    compute: ComputeOptions,
    recorded: Mapping[str, str] | None = None,
    queried: Collection[str] | None = None,
) -> Record:
    """A sample's record with the values of every stored file, then the hashes of its original
    file that its metadata records (``recorded``: field -> hash type), as queries whose file is
    "recorded:FIELD". They come last, so that where both match a match names the stored file;
    whatever the stored bytes are (even none), a recorded hash is matched. Queries are made of
    the ``queried`` types only (None: all); every type's values are columns."""
    record = _hash_stored(sample, types, compute, queried)
    for type_name, value, file in recorded_values(sample.meta, types, recorded or {}):
        if queried is None or type_name in queried:
            record.signals.add(type_name, [value], file)
    return record


def _hash_stored(
    sample: Sample,
    types: Sequence[type[HashType]],
    compute: ComputeOptions,
    queried: Collection[str] | None = None,
) -> Record:
    """A sample's record with the values of every stored file: the image and each part.

    Every stored file is hashed before anything else can go wrong: a known file is known
    whatever its name and whether or not it decodes.
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
    record = Record(sample, row)
    try:
        data = sample.load()
        parts = [(part.name, part.load()) for part in sample.parts]
    except TooLarge as exc:
        row["error"] = row["error"] or str(exc)
        return record
    except OSError as exc:
        row["error"] = row["error"] or f"cannot read: {exc.strerror or exc}"
        return record
    if sample.error and not data and not parts:
        return record  # nothing stored (a null Parquet image, a failed download)
    hasher = _FileHasher(types, compute, record.signals, queried)
    row.update(hasher.bytes_columns(data, sample.location))
    part_problems = []
    for name, blob in parts:
        columns, problem = hasher.file(name, blob, must_decode=extension(name) in IMAGE_EXTENSIONS)
        row["parts"].append({"name": name, **columns})
        part_problems.append(problem)
    if sample.error:
        return record
    try:
        record.image = ImageView(data)
        record.image.original_size = original_size(sample.meta)
        row.update(hasher.pixel_columns(record.image, sample.location))
    except UnreadableImage as exc:
        record.image = None
        row["error"] = str(exc)
        return record
    row["width"], row["height"] = record.image.size
    row["error"] = next((p for p in part_problems if p), None)
    return record


@dataclass
class _FileHasher:
    """Computes every hash type's values of one file into result columns and queries."""

    types: Sequence[type[HashType]]
    compute: ComputeOptions
    signals: SampleSignals
    queried: Collection[str] | None = None  # None: every type

    def bytes_columns(self, data: bytes, name: str) -> dict[str, Any]:
        return self._columns(
            [(t, [t().compute(data)]) for t in self.types if issubclass(t, BytesHashType)], name
        )

    def pixel_columns(self, image: ImageView, name: str) -> dict[str, Any]:
        pixel_types = [t for t in self.types if issubclass(t, PixelHashType)]
        return self._columns([(t, t().compute(image, self.compute)) for t in pixel_types], name)

    def file(
        self, name: str, data: bytes, *, must_decode: bool
    ) -> tuple[dict[str, Any], str | None]:
        """A part's columns, pixel values too where its bytes are an image (whatever its name
        says), and the problem if a file named as an image does not decode."""
        columns = self.bytes_columns(data, name)
        if not data or not (must_decode or has_image_signature(data)):
            return columns, None
        try:
            return columns | self.pixel_columns(ImageView(data), name), None
        except UnreadableImage as exc:
            # A caption is not an image; a file named as one that does not decode is a problem.
            return columns, (f"{exc} ({name})" if must_decode else None)

    def _columns(
        self, computed: Iterable[tuple[type[HashType], list[HashValue]]], name: str
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for hash_cls, values in computed:
            if self.queried is None or hash_cls.name in self.queried:
                self.signals.add(hash_cls.name, values, name)
            out |= hash_cls.columns(values)
        return out


def _decide(record: Record, policy: Policy) -> None:
    decision = policy.decide(Evidence(record.row, record.matches))
    record.row["matches"] = [
        {
            "list": m.list_name,
            "entry": m.entry,
            "signal_type": m.signal_type,
            "distance": m.distance,
            "variant": m.variant,
            "part": m.part,
        }
        for m in record.matches
    ]
    record.row["action"] = decision.action.value
    record.row["reasons"] = list(decision.reasons)
