"""Local engine vs Ray engine on the same dataset, same worker count, side by side.

    python bench/bench_engines.py [--samples 3000] [--workers 2] [--repeat 2] [--dihedral]

Builds a WebDataset of benign photos (scikit-image's bundled ones, see safeset.examples) with
hidden "known" copies, then scans it with each engine and prints samples/s and the ratio.
Ray is timed twice: "cold" is what one CLI run costs (starting and stopping a local Ray
included); "warm" scans on an already running Ray whose workers are up, as a long job or an
existing cluster sees it. Each run must give the same manifest, or the benchmark fails.
CPU time (of all processes the scan used, from Linux /proc) is shown beside wall time, as it
depends less on a shared machine's other load.

Needs: pip install -e '.[examples,ray]'.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from safeset.api import scan
from safeset.engines import LocalEngine, RayEngine
from safeset.examples import build_examples, write_known_list, write_webdataset
from safeset.pipeline import ScanOptions


def build_dataset(root: Path, samples: int) -> tuple[Path, Path, int]:
    started = time.monotonic()
    examples = build_examples(distractors=max(0, samples - 35), seed=11)
    data = write_webdataset(examples, root / "data", per_shard=100)
    known = root / "known.txt"
    write_known_list(examples, known)
    n = len(examples.records)
    print(f"dataset: {n} samples in {len(list(data.glob('*.tar')))} tar shards, built in "
          f"{time.monotonic() - started:.1f}s")  # fmt: skip
    return data, known, n


def cpu_seconds() -> float:
    """CPU time of this process and all its descendants, living or reaped (Linux /proc).

    The machine may be shared: wall time then depends on the neighbours' load, CPU time much
    less, so both are reported.
    """
    own = resource.getrusage(resource.RUSAGE_SELF)
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = own.ru_utime + own.ru_stime + reaped.ru_utime + reaped.ru_stime
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        parents[int(entry)] = int(fields[1])
        # utime, stime, and those of its own reaped children (a raylet's dead workers)
        times[int(entry)] = sum(int(f) for f in fields[11:15]) / tick
    me = os.getpid()
    for pid, seconds in times.items():
        ancestor = parents.get(pid, 0)
        while ancestor not in (0, 1, me):
            ancestor = parents.get(ancestor, 0)
        if ancestor == me:
            total += seconds
    return total


def timed_scan(
    root: Path, data: Path, known: Path, engine: str, workers: int, dihedral: bool
) -> tuple[float, float, bytes]:
    out = root / f"scan-{engine}"
    shutil.rmtree(out, ignore_errors=True)
    runner = LocalEngine(workers) if engine == "local" else RayEngine(workers)
    started, cpu = time.monotonic(), cpu_seconds()
    options = ScanOptions(dihedral=dihedral)
    scan([data], [known], out, options=options, engine=runner, progress=False)
    wall, cpu = time.monotonic() - started, cpu_seconds() - cpu
    return wall, cpu, (out / "manifest.csv").read_bytes()


def start_ray(workers: int) -> float:
    """Start a local Ray and its worker processes (safeset imported); return the seconds."""
    import ray

    started = time.monotonic()
    ray.init(
        address="local", num_cpus=workers, include_dashboard=False, logging_level=logging.ERROR
    )

    @ray.remote(num_cpus=1)
    def warm_up() -> int:
        import safeset.pipeline  # noqa: F401

        time.sleep(0.5)  # keep this worker busy so that the next task starts another
        return 0

    ray.get([warm_up.remote() for _ in range(workers)])
    return time.monotonic() - started


def stop_ray() -> None:
    import ray

    ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2, help="runs per engine (median shown)")
    parser.add_argument("--dihedral", action="store_true", help="8 PDQs per image")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="safeset-bench-"))
    try:
        data, known, n = build_dataset(root, args.samples)
        times: dict[str, list[float]] = {"local": [], "ray cold": [], "ray warm": []}
        cpus: dict[str, list[float]] = {label: [] for label in times}
        manifests: set[bytes] = set()

        def run(label: str, engine: str) -> None:
            wall, cpu, manifest = timed_scan(root, data, known, engine, args.workers, args.dihedral)
            times[label].append(wall)
            manifests.add(manifest)
            shown = "n/a"
            # A Ray stopped inside the run takes its workers' CPU time with it, uncounted.
            if label != "ray cold":
                cpus[label].append(cpu)
                shown = f"{cpu:.2f}s"
            print(f"  {label:9s} {wall:7.2f}s  {n / wall:8.1f} samples/s  cpu {shown}")

        startup: list[float] = []
        # Interleaved, so that a change in the machine's load hits every engine alike.
        for _ in range(args.repeat):
            run("local", "local")
            run("ray cold", "ray")
            startup.append(start_ray(args.workers))
            try:
                run("ray warm", "ray")
            finally:
                stop_ray()
        if len(manifests) != 1:
            raise SystemExit("engines disagree: the manifests differ")

        def rate(label: str) -> float:
            return n / statistics.median(times[label])

        print(f"\n{n} samples, {args.workers} workers, dihedral={args.dihedral}, "
              f"median of {args.repeat}:")  # fmt: skip
        for label in times:
            ratio = rate(label) / rate("local")
            per_cpu = f"{n / statistics.median(cpus[label]):7.1f}" if cpus[label] else "    n/a"
            print(
                f"  {label:9s} {rate(label):8.1f} samples/s  ({ratio:.2f}x local)  "
                f"{per_cpu} samples per CPU-second"
            )
        print(
            f"  Ray start {statistics.median(startup):8.2f}s (init, workers up; 'ray cold' pays it)"
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
