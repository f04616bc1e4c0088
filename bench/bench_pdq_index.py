"""Benchmark safeset's PDQIndex against faiss and python-threatexchange, on one core.

Builds its own inputs (seeded numpy): a list of random 256-bit hashes and a query set, half
"planted" (a copy of a random entry with 0..31 random bits flipped, so it must match at radius
31) and half uniformly random, shuffled together. Every method answers the same radius query;
slow baselines get a prefix of the list and/or of the queries (their q/s is reported as
measured). Reports recall of planted matches, queries per second (wall and CPU time; the
machine may be shared), build time and index memory, and cross-checks that safeset's pairs
equal faiss's exhaustive pairs where both ran on the same list.

It also measures the search `safeset scan` runs with its default fast PDQ: exact to the
threshold (31) and a re-check band of RECHECK_MARGIN (8) bits beyond it, kept where the
threshold's probes meet it (`search(q, 39, exact_radius=31)`), against searching the band
exactly (`search(q, 39)`, what the scan did before), with the share of entries 32..39 bits away
that the band finds.

Run: python bench/bench_pdq_index.py                      # target sizes: 10M entries, 100k queries
     python bench/bench_pdq_index.py --entries 100000 --queries 2000   # quick
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from safeset.matching import pdq_index
from safeset.matching.pdq_index import PDQIndex

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@dataclass
class Result:
    """One method's figures; q/s come from the query subset the method ran."""

    name: str
    entries: int
    queries: int
    build_s: float
    memory_bytes: int
    memory_how: str
    wall_s: float
    cpu_s: float
    planted: int
    found: int
    pairs: int
    notes: list[str] = field(default_factory=list)

    @property
    def qps_wall(self) -> float:
        return self.queries / self.wall_s if self.wall_s else float("inf")

    @property
    def qps_cpu(self) -> float:
        return self.queries / self.cpu_s if self.cpu_s else float("inf")

    @property
    def recall(self) -> float:
        return self.found / self.planted if self.planted else float("nan")


def rss_bytes() -> int:
    """Resident set size now (Linux /proc), to measure what building an index adds."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def timed(fn: Callable[[], object]) -> tuple[object, float, float]:
    """Run fn, returning (result, wall seconds, CPU seconds of this process)."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def make_inputs(
    rng: np.random.Generator, n_entries: int, n_queries: int, plant_from: int, max_flips: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Entries, queries, each query's planted source (-1 if random) and flipped-bit count.

    Planted sources come from the first `plant_from` entries, so every method, whatever prefix
    of the list it indexes, can be scored on the same planted queries.
    """
    entries = rng.integers(0, 256, size=(n_entries, 32), dtype=np.uint8)
    n_planted = n_queries // 2
    sources = rng.integers(0, plant_from, size=n_planted)
    flips = rng.integers(0, max_flips + 1, size=n_planted)
    bits = np.unpackbits(entries[sources], axis=1)
    order = np.argsort(rng.random((n_planted, 256)), axis=1)  # a random bit order per query
    chosen = np.arange(256)[None, :] < flips[:, None]
    bits[np.nonzero(chosen)[0], order[chosen]] ^= 1
    planted = np.packbits(bits, axis=1)
    randoms = rng.integers(0, 256, size=(n_queries - n_planted, 32), dtype=np.uint8)
    queries = np.concatenate([planted, randoms])
    source_of = np.concatenate([sources, np.full(n_queries - n_planted, -1)])
    flips_of = np.concatenate([flips, np.full(n_queries - n_planted, -1)])
    shuffle = rng.permutation(n_queries)
    return entries, queries[shuffle], source_of[shuffle], flips_of[shuffle]


def count_found(rows: np.ndarray, ids: np.ndarray, sources: np.ndarray, n_list: int) -> int:
    """How many planted queries (source >= 0, inside the list) have their source among results."""
    planted = np.flatnonzero((sources >= 0) & (sources < n_list))
    wanted = planted.astype(np.int64) * n_list + sources[planted]
    got = rows.astype(np.int64) * n_list + ids.astype(np.int64)
    return int(np.isin(wanted, got).sum())


def planted_in(sources: np.ndarray, n_list: int) -> int:
    return int(((sources >= 0) & (sources < n_list)).sum())


def bench_ours(
    entries: np.ndarray, queries: np.ndarray, sources: np.ndarray, radius: int
) -> tuple[Result, PDQIndex, tuple[np.ndarray, ...]]:
    gc.collect()
    before = rss_bytes()
    index, build_s, _ = timed(lambda: PDQIndex.build(entries))
    rss_delta = rss_bytes() - before
    peak = peak_rss_bytes()
    pairs, wall_s, cpu_s = timed(partial(index.search, queries, radius))
    rows, ids, _ = pairs
    result = Result(
        "safeset PDQIndex (MIH)",
        len(entries),
        len(queries),
        build_s,
        index.nbytes,
        f"array bytes; RSS delta {rss_delta / 2**20:.0f} MiB",
        wall_s,
        cpu_s,
        planted_in(sources, len(entries)),
        count_found(rows, ids, sources, len(entries)),
        len(rows),
        [
            f"substring widths {index.substring_widths}",
            f"process peak RSS after build {peak / 2**30:.2f} GiB (includes the inputs)",
        ],
    )
    return result, index, pairs


def bench_scan_radius(
    index: PDQIndex, entries: np.ndarray, queries: np.ndarray, radius: int, band: int, seed: int
) -> list[str]:
    """The scan's search (exact to `radius`, band to `radius + band`) vs the band searched exactly.

    Queries: the benchmark's own (half planted 0..radius bits from an entry) plus, to score the
    band, copies of random entries with radius + 1 .. radius + band bits flipped.
    """
    rng = np.random.default_rng(seed + 1)
    n_band = max(len(queries) // 10, 1)
    sources = rng.integers(0, len(entries), size=n_band)
    flips = rng.integers(radius + 1, radius + band + 1, size=n_band)
    bits = np.unpackbits(entries[sources], axis=1)
    order = np.argsort(rng.random((n_band, 256)), axis=1)
    chosen = np.arange(256)[None, :] < flips[:, None]
    bits[np.nonzero(chosen)[0], order[chosen]] ^= 1
    band_queries = np.packbits(bits, axis=1)
    lines = []
    compiled = pdq_index._mih
    runs = (
        ("scan: exact to radius, band beyond", dict(exact_radius=radius), queries, compiled),
        ("the same by numpy alone (no compiler)", dict(exact_radius=radius), queries, None),
        ("band searched exactly (before)", {}, queries[: max(len(queries) // 10, 1)], compiled),
    )
    outer = radius + band
    answers = []
    for label, kwargs, qs, loop in runs:
        pdq_index._mih = loop  # the compiled probe loop, or numpy's
        try:
            index.search(qs[:100], outer, **kwargs)  # warm the pages this search touches
            (rows, ids, dists), wall_s, cpu_s = timed(partial(index.search, qs, outer, **kwargs))
        finally:
            pdq_index._mih = compiled
        answers.append((rows, ids, dists))
        lines.append(
            f"{label}: radius {outer}{' exact to ' + str(radius) if kwargs else ''}, "
            f"{len(qs):,} queries, {len(qs) / cpu_s:,.0f} q/s CPU ({len(qs) / wall_s:,.0f} wall), "
            f"{len(rows):,} pairs"
        )
    same = all(np.array_equal(a, b) for a, b in zip(answers[0], answers[1], strict=True))
    lines.append(f"  compiled and numpy loops: {'the same' if same else 'DIFFERENT'} pairs")
    if compiled is None:
        lines.append("  (the compiled loop is not built here: both runs used numpy)")
    rows, ids, _ = index.search(band_queries, outer, exact_radius=radius)
    wanted = np.arange(n_band, dtype=np.int64) * len(entries) + sources
    found = np.isin(wanted, rows * len(entries) + ids)
    for d in range(radius + 1, outer + 1):
        at = flips == d
        lines.append(f"  band: entries {d} bits away found {found[at].mean() * 100:.2f}%")
    lines.append(f"  band overall: {found.sum():,}/{n_band:,} ({found.mean() * 100:.2f}%)")
    return lines


def faiss_pairs(lims: np.ndarray, dists: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, ...]:
    """faiss range_search output as (rows, ids, distances) sorted like PDQIndex.search."""
    rows = np.repeat(np.arange(len(lims) - 1), np.diff(lims.astype(np.int64)))
    order = np.lexsort((labels, dists, rows))
    return rows[order], labels[order].astype(np.int64), dists[order].astype(np.int64)


def bench_faiss_binary(
    kind: str, entries: np.ndarray, queries: np.ndarray, sources: np.ndarray, radius: int
) -> tuple[Result, tuple[np.ndarray, ...]]:
    """faiss IndexBinaryFlat (exhaustive) or IndexBinaryMultiHash (what pytx's PDQIndex uses).

    faiss range_search keeps distances strictly below its radius, hence radius + 1.
    """
    import faiss

    faiss.omp_set_num_threads(1)
    gc.collect()
    before = rss_bytes()

    def build() -> object:
        if kind == "flat":
            index = faiss.IndexBinaryFlat(256)
        else:  # pytx PDQMultiHashIndex: 16 tables of 16 bits, nflip = threshold // 16
            index = faiss.IndexBinaryMultiHash(256, 16, 16)
            index.nflip = radius // 16
        index.add(entries)
        return index

    index, build_s, _ = timed(build)
    rss_delta = rss_bytes() - before
    (lims, dists, labels), wall_s, cpu_s = timed(partial(index.range_search, queries, radius + 1))
    pairs = faiss_pairs(lims, dists, labels)
    name = "faiss IndexBinaryFlat" if kind == "flat" else "faiss IndexBinaryMultiHash 16x16"
    if kind == "flat":  # the codes are the whole index; too small at 1M to show in RSS
        memory, how = (
            index.ntotal * index.code_size,
            f"codes bytes; RSS delta {rss_delta >> 20} MiB",
        )
    else:
        memory, how = max(rss_delta, 0), "RSS delta"
    result = Result(
        name,
        len(entries),
        len(queries),
        build_s,
        memory,
        how,
        wall_s,
        cpu_s,
        planted_in(sources, len(entries)),
        count_found(pairs[0], pairs[1], sources, len(entries)),
        len(pairs[0]),
        [] if kind == "flat" else [f"nflip={radius // 16} (as pytx PDQIndex sets it)"],
    )
    del index
    gc.collect()
    return result, pairs


def bench_pytx(
    entries: np.ndarray, queries: np.ndarray, sources: np.ndarray, radius: int
) -> Result | None:
    """python-threatexchange's PDQIndex2 (faiss IndexFlatL2 over 0/1 floats), via its API."""
    try:
        import faiss
        from threatexchange.signal_type.pdq.pdq_index2 import PDQIndex2
    except ImportError as error:
        print(f"python-threatexchange unavailable, skipped: {error}", file=sys.stderr)
        return None
    faiss.omp_set_num_threads(1)
    hexes = [bytes(row).hex() for row in entries]
    query_hexes = [bytes(row).hex() for row in queries]
    gc.collect()
    before = rss_bytes()
    index, build_s, _ = timed(
        lambda: PDQIndex2(entries=((h, i) for i, h in enumerate(hexes)), threshold=radius)
    )
    rss_delta = rss_bytes() - before

    def run(index: PDQIndex2) -> tuple[np.ndarray, np.ndarray]:
        rows, ids = [], []
        for q, h in enumerate(query_hexes):
            for match in index.query(h):
                rows.append(q)
                ids.append(match.metadata)
        return np.array(rows, dtype=np.int64), np.array(ids, dtype=np.int64)

    (rows, ids), wall_s, cpu_s = timed(partial(run, index))
    result = Result(
        "pytx PDQIndex2 (faiss IndexFlatL2)",
        len(entries),
        len(queries),
        build_s,
        max(rss_delta, 0),
        "RSS delta",
        wall_s,
        cpu_s,
        planted_in(sources, len(entries)),
        count_found(rows, ids, sources, len(entries)),
        len(rows),
        ["one query() call per hash, as its API offers"],
    )
    del index
    gc.collect()
    return result


def note_extrapolation(result: Result, n_target: int) -> Result:
    """Exhaustive scans cost grows linearly with the list: say what that predicts at n_target."""
    if result.entries < n_target:
        scaled = result.qps_cpu * result.entries / n_target
        result.notes.append(f"linear extrapolation to {n_target:,} entries: {scaled:.1f} CPU q/s")
    return result


def bench_save_load(index: PDQIndex, queries: np.ndarray, radius: int, where: str | None) -> str:
    """Save, load memory-mapped, and time a first search on the loaded index."""
    with tempfile.TemporaryDirectory(dir=where) as tmp:
        path = Path(tmp) / "list.pdqidx"
        _, save_s, _ = timed(lambda: index.save(path))
        size = path.stat().st_size
        loaded, load_s, _ = timed(lambda: PDQIndex.load(path))
        (rows, _, _), wall_s, _ = timed(partial(loaded.search, queries, radius))
        in_memory, load_copy_s, _ = timed(lambda: PDQIndex.load(path, mmap=False))
        del loaded, in_memory
        return (
            f"save {save_s:.1f} s ({size / 2**30:.2f} GiB file); load mmap {load_s * 1e3:.0f} ms, "
            f"then {len(queries)} queries {len(queries) / wall_s:.0f} q/s ({len(rows)} pairs); "
            f"load into memory {load_copy_s:.1f} s"
        )


def print_table(results: list[Result], reference: Result) -> None:
    header = (
        f"{'method':36} {'entries':>10} {'queries':>8} {'build s':>8} {'memory MiB':>10} "
        f"{'q/s wall':>9} {'q/s CPU':>9} {'recall':>8} {'ours/them CPU q/s':>18}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        ratio = reference.qps_cpu / r.qps_cpu
        print(
            f"{r.name:36} {r.entries:>10,} {r.queries:>8,} {r.build_s:>8.1f} "
            f"{r.memory_bytes / 2**20:>10.0f} {r.qps_wall:>9.0f} {r.qps_cpu:>9.0f} "
            f"{r.recall:>8.4f} {ratio:>17.1f}x"
        )
    print()
    for r in results:
        print(
            f"{r.name}: {r.found}/{r.planted} planted found, {r.pairs} pairs; "
            f"memory = {r.memory_how}" + "".join(f"; {n}" for n in r.notes)
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000_000, help="list size for safeset")
    parser.add_argument("--queries", type=int, default=100_000, help="queries for safeset")
    parser.add_argument("--radius", type=int, default=31)
    parser.add_argument("--max-flips", type=int, default=31, help="planted: flip 0..this bits")
    parser.add_argument("--band", type=int, default=8, help="the scan's re-check band (bits)")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--flat-entries", type=int, default=None, help="default: --entries")
    parser.add_argument("--flat-queries", type=int, default=1000)
    parser.add_argument("--multihash-entries", type=int, default=None, help="default: --entries")
    parser.add_argument("--multihash-queries", type=int, default=1000)
    parser.add_argument("--pytx-entries", type=int, default=1_000_000)
    parser.add_argument("--pytx-queries", type=int, default=100)
    parser.add_argument("--skip-baselines", action="store_true")
    parser.add_argument("--skip-save-load", action="store_true")
    parser.add_argument("--tmp-dir", default=None, help="where to write the saved index")
    args = parser.parse_args(argv)
    if argv is None and any(os.environ.get(v) != "1" for v in THREAD_VARS):
        # Thread pools read these when libraries load, so restart with them set: one core.
        os.environ.update(dict.fromkeys(THREAD_VARS, "1"))
        os.execv(sys.executable, [sys.executable, *sys.argv])

    n = args.entries
    flat_n = min(args.flat_entries or n, n)
    multihash_n = min(args.multihash_entries or n, n)
    pytx_n = min(args.pytx_entries, n)
    plant_from = max(1, min(n, flat_n, multihash_n, pytx_n))
    print(f"load average at start: {os.getloadavg()}; numpy {np.__version__}")
    rng = np.random.default_rng(args.seed)
    (entries, queries, sources, _), gen_s, _ = timed(
        lambda: make_inputs(rng, n, args.queries, plant_from, args.max_flips)
    )
    print(f"inputs: {n:,} entries, {args.queries:,} queries (half planted) in {gen_s:.1f} s")

    ours, index, our_pairs = bench_ours(entries, queries, sources, args.radius)
    results = [ours]
    print(f"ours: build {ours.build_s:.1f} s, {ours.qps_wall:.0f} q/s wall", flush=True)
    for line in bench_scan_radius(index, entries, queries, args.radius, args.band, args.seed):
        print(line, flush=True)
    if not args.skip_save_load:
        print("save/load:", bench_save_load(index, queries[:10_000], args.radius, args.tmp_dir))
    del index
    gc.collect()

    if not args.skip_baselines:
        flat_q = queries[: args.flat_queries]
        flat, flat_pairs = bench_faiss_binary(
            "flat", entries[:flat_n], flat_q, sources[: len(flat_q)], args.radius
        )
        results.append(note_extrapolation(flat, n))
        print(f"faiss flat: {flat.qps_wall:.0f} q/s wall", flush=True)
        if flat_n == n:
            ours_head = tuple(c[our_pairs[0] < len(flat_q)] for c in our_pairs)
            same = all(np.array_equal(a, b) for a, b in zip(ours_head, flat_pairs, strict=True))
            print(
                f"exactness: safeset pairs for the first {len(flat_q)} queries "
                f"{'EQUAL' if same else 'DIFFER FROM'} faiss IndexBinaryFlat's "
                f"({len(flat_pairs[0])} pairs)"
            )
        mh_q = queries[: args.multihash_queries]
        multihash, _ = bench_faiss_binary(
            "multihash", entries[:multihash_n], mh_q, sources[: len(mh_q)], args.radius
        )
        results.append(multihash)
        print(f"faiss multihash: {multihash.qps_wall:.0f} q/s wall", flush=True)
        pytx_q = queries[: args.pytx_queries]
        pytx = bench_pytx(entries[:pytx_n], pytx_q, sources[: len(pytx_q)], args.radius)
        if pytx is not None:
            results.append(note_extrapolation(pytx, n))

    print()
    print_table(results, ours)
    print()
    print(f"peak RSS {peak_rss_bytes() / 2**30:.2f} GiB; load average at end: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
