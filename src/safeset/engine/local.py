"""The default engine: a pool of local processes, each scanning whole shards.

Workers write their shard's result file themselves (atomically), so the parent only tracks
progress and nothing is lost or duplicated when a run is killed at any point.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from safeset.errors import SafesetError
from safeset.pipeline import ScanContext, scan_shard
from safeset.sources.base import Shard
from safeset.store import ScanDir

_worker_ctx: tuple[ScanContext, ScanDir] | None = None


def _init_worker(ctx: ScanContext, scan_dir: ScanDir) -> None:
    global _worker_ctx
    _worker_ctx = (ctx, scan_dir)


def process_shard(shard: Shard, ctx: ScanContext, scan_dir: ScanDir) -> int:
    """Scan one shard, store its results, return how many samples it held."""
    table = scan_shard(shard, ctx)
    scan_dir.write_shard(shard.id, table)
    return table.num_rows


def _worker_process(shard: Shard) -> int:
    assert _worker_ctx is not None, "worker used before initialisation"
    return process_shard(shard, *_worker_ctx)


def run_local(
    shards: Sequence[Shard],
    ctx: ScanContext,
    scan_dir: ScanDir,
    workers: int,
    on_done: Callable[[int], None],
) -> None:
    if workers <= 1 or len(shards) <= 1:
        for shard in shards:
            on_done(process_shard(shard, ctx, scan_dir))
        return
    # fork shares the already-built index with workers instead of pickling it to each.
    mp = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(
        workers, mp_context=mp, initializer=_init_worker, initargs=(ctx, scan_dir)
    ) as pool:
        pending: dict[Future[int], Shard] = {}
        queue = iter(shards)
        try:
            while True:
                # A bounded window keeps memory flat however many shards a dataset has.
                while len(pending) < 2 * workers and (shard := next(queue, None)) is not None:
                    pending[pool.submit(_worker_process, shard)] = shard
                if not pending:
                    break
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    shard = pending.pop(future)
                    on_done(future.result())
        except BrokenProcessPool:
            raise SafesetError(
                f"a worker process died while scanning {shard.id}; rerun the same command to "
                "resume (finished shards are kept)"
            ) from None
