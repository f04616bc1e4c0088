"""A scan folder reduced to the counts and histograms its report shows.

Everything is computed column-wise with ``pyarrow.compute`` over ``results/*.parquet`` (group-bys,
value counts, list flattening); Python only ever sees the small outputs, never a row. A report
of a 1,000,000-sample scan therefore costs seconds, not minutes (bench/bench_report.py).

The result columns are read defensively: a column a results file lacks (screening, provenance,
an older or newer schema) only hides the section that needs it. Nothing here reads a hash
column: the report never holds a sample's hashes, so it can never hold a list entry either.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from safeset.errors import SafesetError
from safeset.store import ScanDir

ACTIONS = ("remove", "review", "keep")
FLAGGED_ACTIONS = ("remove", "review")
PROVENANCE_PREFIX = "provenance_"
# Everything the report reads; hashes (md5, sha*, pdq, parts) are deliberately absent.
COLUMNS = (
    "key",
    "source",
    "location",
    "error",
    "matches",
    "action",
    "reasons",
    "explicit_score",
    "faces",
)
# Caps that keep the page small whatever the dataset's size (the page stays < 5 MB).
MAX_SHARD_ROWS = 2000
MAX_FLAGGED_ROWS = 200
MAX_ERROR_KINDS = 100
ERROR_EXAMPLES = 3
MAX_PROVENANCE_VALUES = 20
THROUGHPUT_BINS = 60
EXPLICIT_BINS = 20
AGE_MAX = 100

# Reasons carry per-sample detail (a distance, a score, an age, an error's message); the report
# counts them by rule. Patterns are applied in order to the flattened reasons column.
REASON_GROUPS = (
    (r"^hash:([^:]*):([^:]*):.*$", r"hash:\1:\2"),
    (r"^explicit:.*$", "explicit"),
    (r"^minor-face:.*$", "minor-face"),
    (r"^caption-term:([^:]*):.*$", r"caption-term:\1"),
    (r"^error:([^:]*).*$", r"error:\1"),
)


@dataclass
class ScanReport:
    """What a report shows, as small plain values (JSON-ready)."""

    samples: int
    shards: int  # result files found
    shards_total: int | None  # shards in the job (summary.json), when known
    actions: dict[str, int]
    errors: int
    errors_by_kind: list[dict[str, Any]]
    matches: list[dict[str, Any]]
    distances: list[dict[str, Any]]
    reasons: list[dict[str, Any]]
    sources: list[dict[str, Any]]
    shard_rows: list[dict[str, Any]]
    flagged: list[dict[str, Any]]
    throughput: dict[str, Any]
    job: dict[str, Any]
    summary: dict[str, Any]
    explicit: dict[str, Any] | None = None
    ages: dict[str, Any] | None = None
    provenance: list[dict[str, Any]] | None = None
    missing_columns: list[str] = field(default_factory=list)

    def matches_by_list(self) -> dict[str, dict[str, int]]:
        """Match records by list and signal type, shaped as summary.json's ``matches``."""
        out: dict[str, dict[str, int]] = {}
        for m in self.matches:
            out.setdefault(m["list"], {})[m["signal_type"]] = m["matches"]
        return out


def _read_shard(path: Path) -> tuple[pa.Table, float]:
    """The report's columns of one results file (those it has) and when it was completed."""
    try:
        pf = pq.ParquetFile(path)
        cols = [c for c in pf.schema_arrow.names if c in COLUMNS or c.startswith(PROVENANCE_PREFIX)]
        # One file per thread: Arrow releases the GIL while decoding.
        return pf.read(columns=cols, use_threads=False), path.stat().st_mtime
    except (OSError, pa.ArrowException) as exc:
        raise SafesetError(f"cannot read results file {path}: {exc}") from None


def read_results(scan: ScanDir) -> tuple[pa.Table, list[dict[str, Any]]]:
    """The report's columns from every shard file, plus each file's rows and finish time.

    A ``shard`` column (dictionary-encoded file stem, which is the shard id) is added, so the
    report works whether or not the results carry one.
    """
    shard_ids = scan.shard_ids()
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        read = list(pool.map(_read_shard, [scan.shard_file(s) for s in shard_ids]))
    tables, files = [], []
    for shard_id, (table, finished) in zip(shard_ids, read, strict=True):
        shard = pa.DictionaryArray.from_arrays(
            pa.array(np.zeros(table.num_rows, dtype=np.int32)), pa.array([shard_id])
        )
        tables.append(table.append_column("shard", shard))
        files.append({"shard": shard_id, "rows": table.num_rows, "finished": finished})
    if not tables:
        return pa.table({"shard": pa.array([], pa.string())}), files
    table = pa.concat_tables(tables, promote_options="permissive")
    return table.unify_dictionaries().combine_chunks(), files


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise SafesetError(f"cannot read {path}: {exc}") from None
    return data if isinstance(data, dict) else {}


def scan_report(path: Path) -> ScanReport:
    """Everything the report shows about the scan folder ``path``."""
    scan = ScanDir(path)
    job = scan.read_job()
    summary = _read_json(scan.summary)
    table, files = read_results(scan)
    present = set(table.column_names)
    n = table.num_rows
    action = table["action"] if "action" in present else pa.nulls(n, pa.string())
    errors, errors_by_kind = _errors(table) if "error" in present else (0, [])
    report = ScanReport(
        samples=n,
        shards=len(files),
        shards_total=summary.get("shards") if isinstance(summary.get("shards"), int) else None,
        actions=_actions(action),
        errors=errors,
        errors_by_kind=errors_by_kind,
        matches=_matches(table) if "matches" in present else [],
        distances=_distances(table) if "matches" in present else [],
        reasons=_reasons(table) if "reasons" in present else [],
        sources=_by(table, "source", action) if "source" in present else [],
        shard_rows=_by(table, "shard", action, limit=MAX_SHARD_ROWS),
        flagged=_flagged(table, action),
        throughput=_throughput(files, summary, scan.summary),
        job=job,
        summary=summary,
        explicit=_explicit(table, job) if "explicit_score" in present else None,
        ages=_ages(table, job) if "faces" in present else None,
        provenance=_provenance(table, summary),
        missing_columns=[c for c in COLUMNS if c not in present],
    )
    return report


def _counts(values: pa.Array | pa.ChunkedArray) -> dict[Any, int]:
    """value -> count, nulls left out."""
    vc = pc.value_counts(values)
    return {
        v: int(c)
        for v, c in zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist(), strict=True)
        if v is not None
    }


def _actions(action: pa.ChunkedArray) -> dict[str, int]:
    counts = _counts(action)
    return {a: counts.get(a, 0) for a in ACTIONS}


def _error_kinds(table: pa.Table) -> pa.Table:
    """Error rows with their kind: the message up to its first colon (as summary.json groups)."""
    error = table["error"]
    has = pc.and_(pc.is_valid(error), pc.not_equal(error, ""))
    rows = table.filter(pc.fill_null(has, False))
    kind = pc.list_element(pc.split_pattern(rows["error"], ":", max_splits=1), 0)
    return rows.append_column("kind", kind)


def _errors(table: pa.Table) -> tuple[int, list[dict[str, Any]]]:
    rows = _error_kinds(table)
    counts = sorted(_counts(rows["kind"]).items(), key=lambda kv: (-kv[1], kv[0]))
    out = []
    for kind, count in counts[:MAX_ERROR_KINDS]:
        sample = rows.filter(pc.equal(rows["kind"], kind)).slice(0, ERROR_EXAMPLES)
        keys = sample["key"].to_pylist() if "key" in sample.column_names else []
        locations = (
            sample["location"].to_pylist()
            if "location" in sample.column_names
            else [""] * len(keys)
        )
        out.append(
            {
                "kind": kind,
                "samples": count,
                "examples": [
                    {"key": k, "location": loc} for k, loc in zip(keys, locations, strict=True)
                ],
            }
        )
    return rows.num_rows, out


def _flat_matches(table: pa.Table) -> pa.Table:
    matches = table["matches"].combine_chunks()
    flat = pc.list_flatten(matches)
    return pa.table(
        {
            "row": pc.list_parent_indices(matches),
            "list": pc.struct_field(flat, "list"),
            "signal_type": pc.struct_field(flat, "signal_type"),
            "distance": pc.struct_field(flat, "distance"),
        }
    )


def _matches(table: pa.Table) -> list[dict[str, Any]]:
    grouped = (
        _flat_matches(table)
        .group_by(["list", "signal_type"])
        .aggregate([("row", "count"), ("row", "count_distinct")])
        .sort_by([("list", "ascending"), ("signal_type", "ascending")])
    )
    return [
        {"list": r["list"], "signal_type": r["signal_type"], "matches": r["row_count"],
         "samples": r["row_count_distinct"]}
        for r in grouped.to_pylist()
    ]  # fmt: skip


def _distances(table: pa.Table) -> list[dict[str, Any]]:
    """Per list and signal type with a distance (PDQ): how many matches at each distance."""
    grouped = (
        _flat_matches(table)
        .group_by(["list", "signal_type", "distance"])
        .aggregate([("row", "count")])
    )
    out: dict[tuple[str, str], dict[int, int]] = {}
    for r in grouped.to_pylist():
        out.setdefault((r["list"], r["signal_type"]), {})[int(r["distance"])] = r["row_count"]
    result = []
    for (name, signal_type), counts in sorted(out.items()):
        # Exact types (sha1, sha256...) only ever match at 0: no histogram to draw.
        if set(counts) == {0} and signal_type != "pdq":
            continue
        top = max(counts)
        result.append(
            {
                "list": name,
                "signal_type": signal_type,
                "distance": list(range(top + 1)),
                "matches": [counts.get(d, 0) for d in range(top + 1)],
            }
        )
    return result


def _reasons(table: pa.Table) -> list[dict[str, Any]]:
    reasons = table["reasons"].combine_chunks()
    rule = pc.list_flatten(reasons)
    for pattern, replacement in REASON_GROUPS:
        rule = pc.replace_substring_regex(rule, pattern, replacement)
    rows = pa.table({"row": pc.list_parent_indices(reasons), "reason": rule})
    grouped = rows.group_by("reason").aggregate([("row", "count_distinct")])
    grouped = grouped.sort_by([("row_count_distinct", "descending"), ("reason", "ascending")])
    return [
        {"reason": r["reason"], "samples": r["row_count_distinct"]} for r in grouped.to_pylist()
    ]


def _by(
    table: pa.Table, column: str, action: pa.ChunkedArray, limit: int | None = None
) -> list[dict[str, Any]]:
    """Samples, actions, errors and matched samples for each value of ``column``."""
    n = table.num_rows
    key = table[column]
    if pa.types.is_dictionary(key.type):
        key = key.cast(pa.string())
    cols: dict[str, Any] = {column: key}
    for a in ACTIONS:
        cols[a] = pc.cast(pc.fill_null(pc.equal(action, a), False), pa.int64())
    if "error" in table.column_names:
        has = pc.and_(pc.is_valid(table["error"]), pc.not_equal(table["error"], ""))
        cols["errors"] = pc.cast(pc.fill_null(has, False), pa.int64())
    if "matches" in table.column_names:
        matched = pc.greater(pc.fill_null(pc.list_value_length(table["matches"]), 0), 0)
        cols["matched"] = pc.cast(matched, pa.int64())
    cols["samples"] = pa.array(np.ones(n, dtype=np.int64))
    sums = [c for c in cols if c != column]
    grouped = pa.table(cols).group_by(column).aggregate([(c, "sum") for c in sums])
    grouped = grouped.rename_columns([c.removesuffix("_sum") for c in grouped.column_names])
    # Most flagged first: with a cap, the shards that matter are the ones kept.
    flagged = pc.add(grouped["remove"], grouped["review"])
    grouped = grouped.append_column("flagged", flagged)
    grouped = grouped.sort_by([("flagged", "descending"), (column, "ascending")])
    total = grouped.num_rows
    if limit is not None:
        grouped = grouped.slice(0, limit)
    rows = grouped.drop_columns(["flagged"]).to_pylist()
    if limit is not None and total > limit:
        rows.append({column: None, "more": total - limit})
    return rows


def _flagged(table: pa.Table, action: pa.ChunkedArray) -> list[dict[str, Any]]:
    """The first flagged samples (key, location, reasons): the manifest has them all."""
    mask = pc.fill_null(pc.is_in(action, pa.array(FLAGGED_ACTIONS)), False)
    cols = [
        c for c in ("key", "source", "location", "action", "reasons") if c in table.column_names
    ]
    if "action" not in cols:
        return []
    rows = table.select(cols).filter(mask).slice(0, MAX_FLAGGED_ROWS)
    out = rows.to_pylist()
    for r in out:
        r["reasons"] = ";".join(r.get("reasons") or [])
    return out


def _throughput(files: list[dict[str, Any]], summary: dict[str, Any], summary_path: Path) -> dict:
    """Samples per second over the run, from when each shard's result file was completed.

    Shards finished before the run started (a resumed scan) are counted apart, not charted.
    """
    run = summary.get("run", {}) if isinstance(summary.get("run"), dict) else {}
    elapsed = run.get("elapsed_seconds")
    if not files:
        return {"seconds": [], "rate": [], "cumulative": [], "resumed_samples": 0}
    finished = np.array([f["finished"] for f in files])
    rows = np.array([f["rows"] for f in files], dtype=np.int64)
    start = float(finished.min())
    if isinstance(elapsed, int | float) and summary_path.exists():
        start = summary_path.stat().st_mtime - float(elapsed)
    this_run = finished >= start - 1.0
    finished, resumed_rows, rows = finished[this_run], int(rows[~this_run].sum()), rows[this_run]
    if len(finished) == 0:
        return {"seconds": [], "rate": [], "cumulative": [], "resumed_samples": resumed_rows}
    start = min(start, float(finished.min()))
    span = max(float(finished.max()) - start, 1e-3)
    bins = min(THROUGHPUT_BINS, len(finished))
    width = span / bins
    idx = np.minimum(((finished - start) / width).astype(np.int64), bins - 1)
    per_bin = np.bincount(idx, weights=rows, minlength=bins)
    edges = start + width * np.arange(1, bins + 1)
    return {
        "seconds": [round(float(e - start), 3) for e in edges],
        "rate": [round(float(v / width), 1) for v in per_bin],
        "cumulative": [int(v) for v in np.cumsum(per_bin)],
        "resumed_samples": resumed_rows,
        "elapsed_seconds": elapsed,
    }


def _thresholds(job: dict[str, Any]) -> dict[str, Any]:
    policy = (
        job.get("options", {}).get("policy", {}) if isinstance(job.get("options"), dict) else {}
    )
    return policy.get("thresholds", {}) if isinstance(policy, dict) else {}


def _explicit(table: pa.Table, job: dict[str, Any]) -> dict[str, Any] | None:
    score = pc.drop_null(table["explicit_score"])
    if len(score) == 0:
        return None
    threshold = _thresholds(job).get("explicit")
    binned = pc.min_element_wise(
        pc.cast(pc.floor(pc.multiply(pc.cast(score, pa.float64()), EXPLICIT_BINS)), pa.int64()),
        EXPLICIT_BINS - 1,
    )
    counts = _counts(binned)
    above = int(pc.sum(pc.greater_equal(score, threshold)).as_py() or 0) if threshold else None
    return {
        "bins": [round(b / EXPLICIT_BINS, 2) for b in range(EXPLICIT_BINS)],
        "samples": [counts.get(b, 0) for b in range(EXPLICIT_BINS)],
        "screened": len(score),
        "threshold": threshold,
        "at_or_above": above,
    }


def _ages(table: pa.Table, job: dict[str, Any]) -> dict[str, Any] | None:
    faces = table["faces"].combine_chunks()
    if not pa.types.is_list(faces.type) or "age" not in [f.name for f in faces.type.value_type]:
        return None
    age = pc.drop_null(pc.struct_field(pc.list_flatten(faces), "age"))
    if len(age) == 0:
        return None
    minor_age = _thresholds(job).get("minor_age")
    binned = pc.min_element_wise(
        pc.max_element_wise(pc.cast(pc.floor(age), pa.int64()), 0), AGE_MAX
    )
    counts = _counts(binned)
    below = int(pc.sum(pc.less(age, minor_age)).as_py() or 0) if minor_age else None
    return {
        "bins": list(range(AGE_MAX + 1)),
        "faces": [counts.get(a, 0) for a in range(AGE_MAX + 1)],
        "total": len(age),
        "minor_age": minor_age,
        "below": below,
    }


def _provenance(table: pa.Table, summary: dict[str, Any]) -> list[dict[str, Any]] | None:
    """Counts for every ``provenance_*`` result column, and summary.json's ``provenance``."""
    out: list[dict[str, Any]] = []
    for name in table.column_names:
        if not name.startswith(PROVENANCE_PREFIX):
            continue
        col = table[name]
        label = name.removeprefix(PROVENANCE_PREFIX)
        if pa.types.is_boolean(col.type):
            out.append({"signal": label, "value": "yes", "samples": int(pc.sum(col).as_py() or 0)})
        elif pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            counts = sorted(_counts(col).items(), key=lambda kv: (-kv[1], kv[0]))
            for value, count in counts[:MAX_PROVENANCE_VALUES]:
                out.append({"signal": label, "value": value, "samples": count})
        else:
            out.append({"signal": label, "value": "present", "samples": int(pc.count(col).as_py())})
    extra = summary.get("provenance")
    if isinstance(extra, dict):
        for signal, value in sorted(extra.items()):
            if isinstance(value, dict):
                out.extend(
                    {"signal": signal, "value": str(k), "samples": v}
                    for k, v in sorted(value.items())
                    if isinstance(v, int)
                )
            elif isinstance(value, int):
                out.append({"signal": signal, "value": "samples", "samples": value})
    return out or None


def scan_time(summary: dict[str, Any]) -> float | None:
    run = summary.get("run")
    value = run.get("elapsed_seconds") if isinstance(run, dict) else None
    return float(value) if isinstance(value, int | float) else None


def relative_href(target: Path, page: Path) -> str:
    """A link from ``page`` to ``target`` that works wherever the folder is moved together."""
    return Path(os.path.relpath(target.resolve(), page.resolve().parent)).as_posix()
