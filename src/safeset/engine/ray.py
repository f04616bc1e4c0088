"""The Ray engine: the local engine's per-shard pipeline, scheduled as Ray tasks.

Why plain tasks over shards rather than Ray Data: a shard is already the unit of work, of
resume and of progress. One task scans one shard and returns its result table, so "this shard
is done" stays one atomic file per shard id and a rerun skips exactly the finished ones. Ray
Data would re-chunk samples into blocks that match no shard, so a killed job could not say
which shards were complete without a second bookkeeping layer; its streaming executor and
format conversions would also add overhead to what is, per shard, one function call.

Tasks return their result table (small: hashes and verdicts, never image bytes) and the driver
writes it with ``ScanDir.write_shard``. So ``--out`` needs to exist on the driver only; on a
cluster of several machines, workers need safeset installed and the SOURCE paths readable at the
same paths (a shared file system), or URL tables whose images they download themselves.

The scan context (matcher and options) is put in the object store once; each worker process
fetches it once and keeps it (see ``_context``) instead of receiving a copy with every task.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

import pyarrow as pa

from safeset.errors import SafesetError
from safeset.pipeline import ScanContext, scan_shard
from safeset.sources.base import Shard
from safeset.store import ScanDir

# The scan context this worker process last fetched, by object id: (id, context).
_cached: tuple[str, ScanContext] | None = None


def _context(ref: Any) -> ScanContext:
    global _cached
    if _cached is None or _cached[0] != ref.hex():
        import ray

        _cached = (ref.hex(), ray.get(ref))
    return _cached[1]


def _scan_task(ctx_box: list[Any], shard: Shard) -> pa.Table:
    # The reference arrives boxed in a list: Ray would resolve a bare ObjectRef argument and
    # deserialise the context (rebuilding its indexes) for every task.
    return scan_shard(shard, _context(ctx_box[0]))


def import_ray() -> ModuleType:
    try:
        import ray
    except ImportError:
        raise SafesetError("--engine ray needs Ray: pip install 'safeset[ray]'") from None
    return ray


def check_reachable(address: str) -> None:
    """Fail in seconds on a HOST:PORT nobody answers at; Ray itself retries for minutes."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return  # "auto" and the like: Ray finds the cluster itself
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise SafesetError(f"cannot reach the Ray cluster at {address}: {reason}") from None


def _connect(ray: ModuleType, address: str | None, workers: int) -> bool:
    """Join the cluster at ``address`` or start a local Ray; True if this call started it."""
    if ray.is_initialized():
        return False
    if address:
        check_reachable(address)
    quiet = {"logging_level": logging.ERROR, "log_to_driver": False}
    try:
        if address:
            ray.init(address=address, **quiet)
        else:
            # address="local": a fresh local Ray even when RAY_ADDRESS names a cluster.
            ray.init(address="local", num_cpus=workers, include_dashboard=False, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        hint = ""
        if address and "RAY_AUTH_MODE" not in os.environ:
            hint = " (a cluster with token authentication needs RAY_AUTH_MODE=token)"
        raise SafesetError(f"cannot start or join {where}: {exc}{hint}") from None
    return True


def _slots(ray: ModuleType, workers: int, address: str | None) -> int:
    """How many tasks can run at once: the local Ray's workers, or the cluster's CPUs."""
    if not address:
        return workers
    return max(1, int(ray.cluster_resources().get("CPU", workers)))


def run_ray(
    shards: Sequence[Shard],
    ctx: ScanContext,
    scan_dir: ScanDir,
    workers: int,
    on_done: Callable[[int], None],
    address: str | None = None,
) -> None:
    ray = import_ray()
    if not shards:
        return
    started = _connect(ray, address, workers)
    try:
        task = ray.remote(num_cpus=1)(_scan_task)
        ctx_box = [ray.put(ctx)]
        # A bounded window keeps the driver's memory flat however many shards there are.
        window = 2 * _slots(ray, workers, address)
        pending: dict[Any, Shard] = {}
        queue = iter(shards)
        while True:
            while len(pending) < window and (shard := next(queue, None)) is not None:
                pending[task.remote(ctx_box, shard)] = shard
            if not pending:
                break
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                shard = pending.pop(ref)
                table = _result(ray, ref, shard)
                scan_dir.write_shard(shard.id, table)
                on_done(table.num_rows)
    finally:
        if started:
            ray.shutdown()


def _result(ray: ModuleType, ref: Any, shard: Shard) -> pa.Table:
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        if isinstance(exc.cause, SafesetError):
            raise exc.cause from None
        raise
    except ray.exceptions.RayError as exc:
        # Ray retries a task whose worker or node died; this failure outlived those retries.
        raise SafesetError(
            f"Ray could not scan {shard.id} ({type(exc).__name__}); rerun the same command "
            "to resume (finished shards are kept)"
        ) from None
