"""Expansion: near-copies of every remove-tier hit, found in the scanned dataset itself.

The Stanford Internet Observatory's LAION-5B audit expanded from confirmed hash hits by
nearest-neighbour search and found three times as many images as the hits alone. This is that
step, without a model: after every shard is scanned, the probes each hit stored (PDQ of many
regions of it, ``signals.near``) are searched against every other sample's stored descriptors
(its PDQ, the PDQ of a few fixed regions and of its unpadded variant) within ``threshold``
bits. A sample within reach of a hit that no list matched goes to the review tier with the
reason ``near:KEY:d=N`` (KEY: the closest hit's key), never to remove: a near-copy is evidence
for a person to weigh, not a confirmed match.

Cost: one pass reading the hits' probes (a null cell for every other sample), an index over
them (tens of values per hit), then one pass over the descriptor columns, shard by shard, each
searched against that index (in the local engine's workers); only shards whose rows change
are rewritten. It works on stored results, so it is the same whichever engine scanned, and it
is recomputed from scratch on every run (a resumed scan, a kill during a rewrite): each row
keeps what the policy decided (``near_raised`` says expansion raised keep to review), so the
result is the same however often it runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from safeset.engines import Engine, LocalEngine
from safeset.matching.pdq_index import PDQIndex
from safeset.policy import Action
from safeset.signals.pdq_reference import MIN_MATCH_QUALITY
from safeset.store import ScanDir, nonempty, read_results

#: Default reach of a probe, in bits. The descriptors are hashes of blurred region views
#: (``regions.buffer_hashes``), compared only with each other: on bench/bench_recall.py's
#: copies, 5% crops and caption banners lay at most 34 bits from their hit's nearest probe,
#: unrelated photos at least 76. A near-copy goes to review, so reach errs on the wide side.
DEFAULT_THRESHOLD = 36
REASON = "near:"
_HASH = 32


@dataclass(frozen=True)
class Hit:
    key: str
    shard: str
    index: int


@dataclass
class ExpansionCounts:
    hits: int = 0
    probes: int = 0
    near: int = 0
    shards_rewritten: int = 0

    def as_dict(self) -> dict[str, int]:
        """What the summary records: the same however often the step ran (the shards it
        rewrote this time are not)."""
        return {"hits": self.hits, "probes": self.probes, "near": self.near}


def expand(
    scan_dir: ScanDir, threshold: int = DEFAULT_THRESHOLD, engine: Engine | None = None
) -> ExpansionCounts:
    """Mark the near-copies of every hit in ``scan_dir``'s results (rewriting those shards).

    The search of each shard is a task of ``engine`` where its workers see the scan folder
    (the local engine's do), so that the pass over every row splits across them as the scan
    did; the driver alone writes. Elsewhere (Ray) it runs in this process.
    """
    counts = ExpansionCounts()
    shards = [s for s in scan_dir.shard_ids() if _has_near(scan_dir, s)]
    hits, probes, owners = _probes(scan_dir, shards)
    counts.hits, counts.probes = len(hits), len(owners)
    if not len(owners):
        # No probes, no near-copies: and no earlier run of this job can have marked any (its
        # results, hence its hits, were the same), so there is nothing to read again.
        return counts
    search = _ShardSearch(
        scan_dir, PDQIndex.build(probes), owners, [h.key for h in hits], threshold
    )

    def store(shard: str, found: tuple[dict[int, tuple[str, int]], bool]) -> None:
        near, changed = found
        counts.near += len(near)
        if changed:  # the whole shard is rewritten
            scan_dir.write_shard(shard, _apply(read_results(scan_dir.shard_file(shard)), near))
            counts.shards_rewritten += 1

    runner = engine if engine is not None and engine.shares_files else LocalEngine(1)
    runner.run(shards, search, store)
    return counts


@dataclass(frozen=True)
class _ShardSearch:
    """One shard's search, as an engine task: its near rows, and whether its file changes."""

    scan_dir: ScanDir
    index: PDQIndex
    owners: np.ndarray
    keys: list[str]  # of the hits, in the order ``owners`` numbers them
    threshold: int

    def __call__(self, shard: str) -> tuple[dict[int, tuple[str, int]], bool]:
        table = read_results(self.scan_dir.shard_file(shard), _COLUMNS)
        near = _near_rows(table, self.index, self.owners, self.keys, self.threshold)
        return near, _apply(table, near) is not None


# What the search and the change check read: descriptors, decisions, expansion state.
_COLUMNS = [
    "pdq",
    "pdq_quality",
    "near_regions",
    "matches",
    "action",
    "reasons",
    "near_raised",
    "near_of",
    "near_distance",
]


def _has_near(scan_dir: ScanDir, shard: str) -> bool:
    return "near_probes" in pq.read_schema(scan_dir.shard_file(shard)).names


def _probes(scan_dir: ScanDir, shards: list[str]) -> tuple[list[Hit], np.ndarray, np.ndarray]:
    """Every hit, the probe hashes of all of them stacked, and which hit each probe is of."""
    hits: list[Hit] = []
    blobs: list[bytes] = []
    owners: list[int] = []
    for shard in shards:
        cols = ["key", "index", "near_probes", "near_raised", "action", "matches"]
        table = read_results(scan_dir.shard_file(shard), cols)
        found = pc.is_valid(table.column("near_probes"))
        for row in table.filter(found).to_pylist():
            if not _is_hit(row):
                continue
            owners += [len(hits)] * (len(row["near_probes"]) // _HASH)
            blobs.append(row["near_probes"])
            hits.append(Hit(row["key"], shard, row["index"]))
    probes = np.frombuffer(b"".join(blobs), dtype=np.uint8).reshape(-1, _HASH)
    return hits, probes, np.array(owners, dtype=np.int64)


def _is_hit(row: dict) -> bool:
    """A remove-tier hash-list hit (as the policy decided, expansion never removes)."""
    return bool(row["matches"]) and row["action"] == Action.REMOVE.value


def _near_rows(
    table: pa.Table, index: PDQIndex, owners: np.ndarray, keys: list[str], threshold: int
) -> dict[int, tuple[str, int]]:
    """Row number -> (closest hit's key, distance) for each row of ``table`` within reach of
    a probe, hits themselves excepted; ties go to the hit found first (shard order).

    Column-wise: this pass reads every row of the scan, so no row becomes a Python object
    unless it is near a hit."""
    rows, queries = _descriptors(table)
    if not len(rows):
        return {}
    found, probes, distances = index.search(queries, threshold)
    rows, owner = rows[found], owners[probes]
    order = np.lexsort((owner, distances, rows))  # by row, then distance, then hit
    rows, owner, distances = rows[order], owner[order], distances[order]
    first = np.ones(len(rows), dtype=bool)
    first[1:] = rows[1:] != rows[:-1]
    return {
        row: (keys[hit], distance)
        for row, hit, distance in zip(
            rows[first].tolist(), owner[first].tolist(), distances[first].tolist(), strict=True
        )
    }


def _descriptors(table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """The values each row is searched by (its PDQ where it passes the quality gate, and its
    region descriptors), stacked, and the row each is of. Rows a list matched are left out:
    a list knows them, they are not near-copies that no list knows."""
    unmatched = pc.invert(nonempty(table.column("matches")))
    quality = pc.fill_null(table.column("pdq_quality"), 0)
    gated = pc.and_(
        pc.and_(
            unmatched, pc.fill_null(pc.greater(pc.binary_length(table.column("pdq")), 0), False)
        ),
        pc.greater_equal(quality, MIN_MATCH_QUALITY),
    )
    pdq = bytes.fromhex("".join(table.column("pdq").filter(gated).to_pylist()))
    regions = table.column("near_regions").filter(unmatched)
    per_row = pc.fill_null(pc.binary_length(regions), 0).to_numpy() // _HASH
    values = pdq + b"".join(blob for blob in regions.to_pylist() if blob)
    rows = np.concatenate(
        (
            np.flatnonzero(_numpy(gated)),
            np.repeat(np.flatnonzero(_numpy(unmatched)), per_row),
        )
    )
    return rows, np.frombuffer(values, dtype=np.uint8).reshape(-1, _HASH)


def _numpy(mask: pa.ChunkedArray) -> np.ndarray:
    return mask.to_numpy(zero_copy_only=False)


def _expanded_before(table: pa.Table) -> bool:
    return pc.any(pc.is_valid(table.column("near_of"))).as_py() or False


def _apply(table: pa.Table, near: dict[int, tuple[str, int]]) -> pa.Table | None:
    """``table`` with each row's expansion state recomputed from the policy's decision; None
    when nothing changes (the shard file is then left as it is)."""
    if not near and not _expanded_before(table):
        return None  # the common case: nothing near, nothing marked by an earlier run
    actions = table.column("action").to_pylist()
    reasons = table.column("reasons").to_pylist()
    raised = table.column("near_raised").to_pylist()
    near_of = table.column("near_of").to_pylist()
    distance = table.column("near_distance").to_pylist()
    new = {
        "action": list(actions),
        "reasons": list(reasons),
        "near_raised": list(raised),
        "near_of": list(near_of),
        "near_distance": list(distance),
    }
    for n in range(table.num_rows):
        base_action = Action.KEEP.value if raised[n] else actions[n]
        base_reasons = [r for r in reasons[n] or () if not r.startswith(REASON)]
        key, d = near.get(n, (None, None))
        lifted = key is not None and base_action == Action.KEEP.value
        new["action"][n] = Action.REVIEW.value if lifted else base_action
        new["reasons"][n] = base_reasons + ([f"{REASON}{key}:d={d}"] if key is not None else [])
        new["near_raised"][n] = lifted
        new["near_of"][n] = key
        new["near_distance"][n] = d
    if all(
        new[c] == old
        for c, old in (
            ("action", actions),
            ("reasons", reasons),
            ("near_raised", raised),
            ("near_of", near_of),
            ("near_distance", distance),
        )
    ):
        return None
    for name, values in new.items():
        i = table.schema.get_field_index(name)
        table = table.set_column(
            i, table.schema.field(i), pa.array(values, table.schema.field(i).type)
        )
    return table
