"""A scan's output folder: per-shard result files, the manifest and the summary.

Layout of DIR:
  job.json          what was scanned with what (sources, list fingerprints, options)
  results/*.parquet one file per shard, written to a temporary name and renamed when complete
  manifest.csv      flagged samples only; rebuilt from results/, never appended to
  manifest.csv-metadata.json  its column types (CSV on the Web): all text but distance
  summary.json      counts, rebuilt from results/
  .safeset-lock     held (flock) by the scan writing DIR; records its pid (safeset.lock)

Results are the source of truth: a killed scan leaves only whole shard files behind, so the
rerun skips them and the manifest and summary come out identical.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from safeset.atomic import is_leftover, write_atomic
from safeset.errors import SafesetError
from safeset.lock import LOCK_NAME
from safeset.manifest_schema import manifest_metadata
from safeset.policy import EXPLICIT_MINOR_REASON, FLAGGED
from safeset.provenance.rules import SYNTHETIC_ABUSE_WARNING, SYNTHETIC_EXPLICIT_MINOR_REASON
from safeset.signals import HashType

MATCH_TYPE = pa.struct(
    [
        ("list", pa.string()),
        ("entry", pa.int64()),
        ("signal_type", pa.string()),
        ("distance", pa.int16()),
        ("variant", pa.int8()),
        ("part", pa.string()),
    ]
)

# Where each sample is, whatever its format.
IDENTITY_FIELDS = [
    pa.field("key", pa.string()),
    pa.field("source", pa.string()),
    pa.field("location", pa.string()),
    pa.field("index", pa.int64()),
    pa.field("shard", pa.string()),
    pa.field("url", pa.string()),
]
DECISION_FIELDS = [
    pa.field("matches", pa.list_(MATCH_TYPE)),
    pa.field("action", pa.string()),
    pa.field("reasons", pa.list_(pa.string())),
]


def result_schema(
    hash_types: Sequence[type[HashType]], signal_fields: Sequence[pa.Field]
) -> pa.Schema:
    """The results' columns, assembled from the job's hash types and content signals: where
    the sample is; each hash type's columns for its image; size and error; the same hash
    columns for each of its other stored files (``parts``); each signal's columns; the
    decision."""
    hash_fields = [f for t in hash_types for f in t.fields()]
    part_type = pa.struct([pa.field("name", pa.string()), *hash_fields])
    return pa.schema(
        [
            *IDENTITY_FIELDS,
            *hash_fields,
            pa.field("width", pa.int32()),
            pa.field("height", pa.int32()),
            pa.field("error", pa.string()),
            pa.field("parts", pa.list_(part_type)),
            *signal_fields,
            *DECISION_FIELDS,
        ]
    )


MANIFEST_COLUMNS = [
    "key",
    "source",
    "location",
    "url",
    "md5",
    "pdq",
    "action",
    "reasons",
    "matched_list",
    "matched_signal_type",
    "distance",
    "matched_part",
]


class ScanDir:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.results = path / "results"
        self.job_file = path / "job.json"
        self.manifest = path / "manifest.csv"
        # The manifest's column types (CSV on the Web): see safeset.manifest_schema.
        self.manifest_metadata = path / "manifest.csv-metadata.json"
        self.summary = path / "summary.json"

    def prepare(self, job: dict[str, Any], force: bool) -> None:
        """Create DIR for ``job``, or resume it if it already holds the same job."""
        if self.path.exists() and not self.path.is_dir():
            raise SafesetError(f"--out {self.path} exists and is not a folder")
        if self.job_file.exists():
            previous = self._read_job()
            if previous != job:
                if not force:
                    raise SafesetError(
                        f"{self.path} holds a scan of a different job (sources, lists or options "
                        "differ); choose another --out or pass --force to replace it"
                    )
                shutil.rmtree(self.results, ignore_errors=True)
                for f in (self.manifest, self.manifest_metadata, self.summary):
                    f.unlink(missing_ok=True)
        elif self.path.exists() and not self._holds_only_leftovers() and not force:
            raise SafesetError(
                f"--out {self.path} is not empty and holds no safeset scan; "
                "choose another folder or pass --force"
            )
        try:
            self.results.mkdir(parents=True, exist_ok=True)
            write_atomic(self.job_file, json.dumps(job, indent=2, sort_keys=True).encode())
        except OSError as exc:
            raise SafesetError(f"cannot write to {self.path}: {exc.strerror or exc}") from None
        # Leftovers of a killed run are incomplete by construction.
        for stale in [*self.path.iterdir(), *self.results.iterdir()]:
            if is_leftover(stale):
                stale.unlink(missing_ok=True)

    def _holds_only_leftovers(self) -> bool:
        """Whether DIR is empty but for what a scan killed inside ``prepare`` leaves behind:
        an empty results/ and a half-written job.json under a temporary name."""
        for entry in self.path.iterdir():
            if entry == self.results and entry.is_dir() and not any(entry.iterdir()):
                continue
            if entry.name == LOCK_NAME:  # the lock this very scan holds
                continue
            if entry.is_file() and is_leftover(entry):
                continue
            return False
        return True

    def _read_job(self) -> dict[str, Any]:
        try:
            return json.loads(self.job_file.read_text())
        except (OSError, ValueError):
            return {}

    def read_job(self) -> dict[str, Any]:
        if not self.job_file.is_file():
            raise SafesetError(f"{self.path} is not a safeset scan folder (no job.json)")
        return self._read_job()

    def shard_file(self, shard_id: str) -> Path:
        return self.results / f"{shard_id}.parquet"

    def done(self, shard_id: str) -> bool:
        return self.shard_file(shard_id).exists()

    def write_shard(self, shard_id: str, table: pa.Table) -> None:
        buf = io.BytesIO()
        pq.write_table(table, buf, compression="zstd")
        write_atomic(self.shard_file(shard_id), buf.getvalue())

    def shard_ids(self) -> list[str]:
        return sorted(p.name.removesuffix(".parquet") for p in self.results.glob("*.parquet"))

    def iter_tables(
        self, columns: Sequence[str] | None = None, optional: Sequence[str] = ()
    ) -> Iterator[pa.Table]:
        """Each shard's results: ``columns`` of them (None: all), and of ``optional`` those the
        job has."""
        for shard_id in self.shard_ids():
            yield read_results(self.shard_file(shard_id), columns, optional)

    def write_reports(self, extra: dict[str, Any]) -> dict[str, Any]:
        """Rebuild manifest.csv and summary.json from all shard results.

        Column-wise: every row is counted by its action, and only rows with something to say
        (flagged, erred, matched, given reasons) become Python objects, so that this pass in
        the driver stays a small part of a scan however many workers did the rest.
        """
        summary = _Tally()
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(MANIFEST_COLUMNS)
        flagged_actions = pa.array(sorted(a.value for a in FLAGGED))
        for table in self.iter_tables(_REPORTED, optional=_REPORTED_IF_SCANNED):
            summary.add_table(table)
            flagged = table.filter(pc.is_in(table["action"], flagged_actions))
            writer.writerows(_manifest_row(row) for row in flagged.to_pylist())
        write_atomic(self.manifest, out.getvalue().encode())
        write_atomic(self.manifest_metadata, manifest_metadata(MANIFEST_COLUMNS))
        report = summary.as_dict() | extra
        write_atomic(self.summary, json.dumps(report, indent=2, sort_keys=True).encode())
        return report


def read_results(
    path: Path, columns: Sequence[str] | None = None, optional: Sequence[str] = ()
) -> pa.Table:
    """One shard's result file: ``columns`` (None: all), and of ``optional`` those it has.
    (``pq.read_table`` would import pyarrow.dataset, 0.2 s a process, to read one file.)"""
    with pq.ParquetFile(path) as f:
        if columns is not None:
            names = f.schema_arrow.names
            columns = [*columns, *(c for c in optional if c in names)]
        return f.read(columns=columns)


# What the manifest and the summary read of the results.
_REPORTED = ["key", "source", "location", "url", "action", "reasons", "matches", "error"]
_REPORTED_IF_SCANNED = ["md5", "pdq", "synthetic_evidence"]


# A cell starting with one of these is a formula to spreadsheet programs (OWASP's CSV injection
# list); keys, locations and urls come from the dataset, which may be hostile (invariant 8).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")


def inert_cell(value: Any) -> Any:
    """``value`` safe to open in a spreadsheet: a text cell that would start a formula gets a
    leading apostrophe, which spreadsheets read as "this is text" (results/ keep it as it is)."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _manifest_row(row: dict[str, Any]) -> list[Any]:
    return [inert_cell(cell) for cell in _manifest_cells(row)]


def _manifest_cells(row: dict[str, Any]) -> list[Any]:
    best = row["matches"][0] if row["matches"] else None
    return [
        row["key"],
        row["source"],
        row["location"],
        row["url"] or "",
        row.get("md5") or "",
        row.get("pdq") or "",
        row["action"],
        ";".join(row["reasons"]),
        best["list"] if best else "",
        best["signal_type"] if best else "",
        best["distance"] if best else "",
        best["part"] if best else "",
    ]


# Reason prefixes the summary counts samples by, when provenance was scanned.
PROVENANCE_TAGS = frozenset({"synthetic", "face-swap-suspected", "face-swap+explicit", "opt-out"})


class _Tally:
    def __init__(self) -> None:
        self.samples = 0
        self.actions: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.matches: dict[str, Counter[str]] = {}
        self.may_be_illegal = 0
        self.synthetic_abuse = 0
        # Samples per provenance tag (synthetic, face swap suspected, opt-out), when scanned.
        self.provenance: Counter[str] | None = None

    def add_table(self, table: pa.Table) -> None:
        """Count a shard's rows: every row by its action, then the details of those that have
        any (an error, matches, reasons)."""
        if not table.num_rows:
            return
        self.samples += table.num_rows
        counts = pc.value_counts(table["action"])
        values, numbers = (counts.field(f).to_pylist() for f in ("values", "counts"))
        self.actions.update(dict(zip(values, numbers, strict=True)))
        if "synthetic_evidence" in table.column_names:  # provenance was scanned
            self.provenance = self.provenance or Counter()
        said = pc.or_(
            pc.is_valid(table["error"]),
            pc.or_(nonempty(table["matches"]), nonempty(table["reasons"])),
        )
        for row in table.select(["error", "matches", "reasons"]).filter(said).to_pylist():
            self._add_details(row)

    def _add_details(self, row: dict[str, Any]) -> None:
        if row["error"]:
            # Group by the reason's kind, not its variable detail.
            self.errors[row["error"].split(":", 1)[0]] += 1
        for m in row["matches"]:
            self.matches.setdefault(m["list"], Counter())[m["signal_type"]] += 1
        if EXPLICIT_MINOR_REASON in row["reasons"]:
            self.may_be_illegal += 1
        if SYNTHETIC_EXPLICIT_MINOR_REASON in row["reasons"]:
            self.synthetic_abuse += 1
        if self.provenance is not None:
            tags = {r.split(":", 1)[0] for r in row["reasons"]} & PROVENANCE_TAGS
            self.provenance.update(tags)

    def as_dict(self) -> dict[str, Any]:
        return (
            {
                "samples": self.samples,
                "actions": {a: self.actions.get(a, 0) for a in ("keep", "review", "remove")},
                "errors": sum(self.errors.values()),
                "errors_by_kind": dict(sorted(self.errors.items())),
                "matches": {k: dict(sorted(v.items())) for k, v in sorted(self.matches.items())},
            }
            | self._provenance()
            | self._warning()
        )

    def _provenance(self) -> dict[str, Any]:
        if self.provenance is None:
            return {}
        return {"provenance": {tag: self.provenance.get(tag, 0) for tag in sorted(PROVENANCE_TAGS)}}

    def _warning(self) -> dict[str, str]:
        if not self.may_be_illegal:
            return {}
        warning = illegal_material_warning(self.may_be_illegal)
        if self.synthetic_abuse:
            warning += f" {self.synthetic_abuse} of them are synthetic or manipulated: "
            warning += SYNTHETIC_ABUSE_WARNING
        return {"warning": warning}


def nonempty(lists: pa.ChunkedArray) -> pa.ChunkedArray:
    """Per row: whether a list column holds a non-empty list (null: no)."""
    return pc.fill_null(pc.greater(pc.list_value_length(lists), 0), False)


def illegal_material_warning(count: int) -> str:
    return (
        f"{count} samples combine explicit content with signs of a minor "
        f"({EXPLICIT_MINOR_REASON}). They may be illegal material: do not open, view or share "
        "them. Report them to NCMEC's CyberTipline (report.cybertip.org, US), the IWF "
        "(report.iwf.org.uk, UK) or your national hotline (inhope.org), giving the manifest "
        "rows (source, location, url, hashes) as the record, and remove them from every copy."
    )
